package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// defaultServerURL is where the management commands go without --url or
// ARCA_URL: the server's own default listen address.
const defaultServerURL = "http://127.0.0.1:8080"

// defaultPageSize is how many items a list command asks for per request.
const defaultPageSize = 100

// managementCommands are the commands that manage a running server through
// its REST API.
func managementCommands() []*cobra.Command {
	return []*cobra.Command{repoCommand(), userCommand(), tokenCommand(), gcCommand(), pypiCommand()}
}

// connection holds the flags every management command shares: where the
// server is, who the caller is and how to print the answer. Each command
// tree binds its own copy as persistent flags.
type connection struct {
	url      string
	token    string
	user     string
	password string
	output   string
}

// addConnectionFlags registers the connection and output flags on cmd, for
// it and every subcommand.
//
// A subcommand may define a local flag of the same name (user create has
// its own --password, the new user's); the local one wins there, and the
// caller's password then comes from ARCA_PASSWORD or --user NAME:PASSWORD.
func addConnectionFlags(cmd *cobra.Command) *connection {
	c := &connection{}
	fs := cmd.PersistentFlags()
	fs.StringVar(&c.url, "url", "", "server URL (env ARCA_URL, default "+defaultServerURL+")")
	fs.StringVar(&c.token, "token", "", "API token, sent as a Bearer token (env ARCA_TOKEN)")
	fs.StringVar(&c.user, "user", "", "user name for basic authentication, or NAME:PASSWORD (env ARCA_USER)")
	fs.StringVar(&c.password, "password", "", "password for --user (env ARCA_PASSWORD)")
	fs.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	return c
}

// apiClient calls the REST API of one server with one set of credentials.
type apiClient struct {
	base      string
	token     string
	user      string
	pass      string
	json      bool
	out       io.Writer
	http      *http.Client
	ctx       context.Context
	anonymous bool // no credentials at all
}

// client builds the API client for cmd from the connection flags, falling
// back to the ARCA_* variables.
func (c *connection) client(cmd *cobra.Command) (*apiClient, error) {
	a := &apiClient{out: cmd.OutOrStdout(), http: http.DefaultClient, ctx: cmd.Context()}
	if a.ctx == nil {
		a.ctx = context.Background()
	}
	switch c.output {
	case "table", "":
	case "json":
		a.json = true
	default:
		return nil, fmt.Errorf("--output must be table or json, not %q", c.output)
	}
	a.base = firstOf(c.url, os.Getenv("ARCA_URL"), defaultServerURL)
	u, err := url.Parse(a.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must be http:// or https:// with a host", a.base)
	}
	a.base = strings.TrimRight(a.base, "/")

	if c.token != "" && c.user != "" {
		return nil, errors.New("give either --token or --user, not both")
	}
	user := c.user
	if user == "" && c.token == "" {
		if a.token = os.Getenv("ARCA_TOKEN"); a.token == "" {
			user = os.Getenv("ARCA_USER")
		}
	} else {
		a.token = c.token
	}
	if user != "" {
		name, pass, hasPass := strings.Cut(user, ":")
		a.user = name
		switch {
		case c.password != "":
			a.pass = c.password
		case hasPass:
			a.pass = pass
		default:
			a.pass = os.Getenv("ARCA_PASSWORD")
		}
		if a.pass == "" {
			return nil, fmt.Errorf("user %s needs a password: --password, ARCA_PASSWORD or --user NAME:PASSWORD", name)
		}
	}
	a.anonymous = a.token == "" && a.user == ""
	return a, nil
}

// firstOf returns the first non-empty string.
func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is the server's error document.
type apiError struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// do sends a request with body (marshalled to JSON unless nil) and returns
// the response body of a 2xx answer. Any other answer is an error carrying
// the server's message.
func (a *apiClient) do(method, path string, body any) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(a.ctx, method, a.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "arca-cli/"+version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case a.token != "":
		req.Header.Set("Authorization", "Bearer "+a.token)
	case a.user != "":
		req.SetBasicAuth(a.user, a.pass)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("cannot reach %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, resp.StatusCode, nil
	}
	return nil, resp.StatusCode, a.failure(resp, data)
}

// failure turns an error answer into an error with the server's message.
func (a *apiClient) failure(resp *http.Response, data []byte) error {
	var doc apiError
	var msgs, codes []string
	if json.Unmarshal(data, &doc) == nil {
		for _, e := range doc.Errors {
			msgs = append(msgs, e.Message)
			if e.Code != "" && !contains(codes, e.Code) {
				codes = append(codes, e.Code)
			}
		}
	}
	if len(msgs) == 0 {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		msgs = append(msgs, text)
	}
	msg := strings.Join(msgs, "; ")
	if resp.StatusCode == http.StatusUnauthorized && a.anonymous {
		msg += "; give --token or --user (or set ARCA_TOKEN)"
	}
	status := strconv.Itoa(resp.StatusCode)
	if len(codes) > 0 {
		status += " " + strings.Join(codes, ", ")
	}
	return fmt.Errorf("%s (HTTP %s)", msg, status)
}

// getJSON GETs path and decodes the answer into v.
func (a *apiClient) getJSON(path string, v any) ([]byte, error) {
	data, _, err := a.do("GET", path, nil)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return nil, fmt.Errorf("GET %s: the answer is not the expected JSON: %w", path, err)
		}
	}
	return data, nil
}

// page is a list endpoint's answer.
type page struct {
	Items []json.RawMessage `json:"items"`
	Next  string            `json:"next"`
}

// list reads every page of a list endpoint, following next until it is
// empty, and returns the items as the server sent them.
func (a *apiClient) list(path string, pageSize int) ([]json.RawMessage, error) {
	if pageSize < 1 {
		pageSize = defaultPageSize
	}
	var all []json.RawMessage
	after := ""
	seen := map[string]bool{}
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if after != "" {
			q.Set("after", after)
		}
		var p page
		if _, err := a.getJSON(path+"?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.Next == "" || len(p.Items) == 0 {
			return all, nil
		}
		if seen[p.Next] {
			return nil, fmt.Errorf("GET %s: the server repeats the page after %q", path, p.Next)
		}
		seen[p.Next] = true
		after = p.Next
	}
}

// printJSON writes a JSON document indented.
func (a *apiClient) printJSON(data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := a.out.Write(buf.Bytes())
	return err
}

// printJSONValue marshals v and writes it indented.
func (a *apiClient) printJSONValue(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.printJSON(b)
}

// printItems writes list items as one JSON array.
func (a *apiClient) printItems(items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	return a.printJSONValue(items)
}

// table returns a tabwriter over the output; call Flush when done.
func (a *apiClient) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
}

// printFields writes key/value rows.
func (a *apiClient) printFields(rows [][2]string) error {
	tw := a.table()
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// pathName escapes one path segment of an API URL.
func pathName(name string) string { return url.PathEscape(name) }

// readJSONObject reads a JSON object from a file ("-" is standard input).
func readJSONObject(cmd *cobra.Command, file string) (map[string]json.RawMessage, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(cmd.InOrStdin())
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%s: not a JSON object: %v", file, err)
	}
	return obj, nil
}

// humanBytes writes a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// yesNo prints a boolean for a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
