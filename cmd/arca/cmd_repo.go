package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

// repository is the part of a repository definition the tables show; the
// full definition travels as JSON so that format sections survive.
type repository struct {
	Name          string `json:"name"`
	Format        string `json:"format"`
	Type          string `json:"type"`
	Online        bool   `json:"online"`
	AnonymousRead bool   `json:"anonymousRead"`
	WritePolicy   string `json:"writePolicy"`
}

// commonRepositoryFields are the keys that are not format sections.
var commonRepositoryFields = map[string]bool{
	"name": true, "format": true, "type": true, "online": true, "anonymousRead": true, "writePolicy": true,
}

var writePolicies = map[string]bool{"allow-once": true, "allow": true, "deny": true}

func repoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Manage repositories on a running server",
		Long: `Manage repositories through the REST API of a running server.

The server is --url (or ARCA_URL, default ` + defaultServerURL + `); authenticate with
--token (or ARCA_TOKEN), or --user and --password (or ARCA_USER, ARCA_PASSWORD).`,
	}
	conn := addConnectionFlags(cmd)
	cmd.AddCommand(repoListCommand(conn), repoCreateCommand(conn), repoShowCommand(conn),
		repoUpdateCommand(conn), repoDeleteCommand(conn))
	return cmd
}

func repoListCommand(conn *connection) *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the repositories you may read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			items, err := a.list("/api/v1/repositories", pageSize)
			if err != nil {
				return err
			}
			if a.json {
				return a.printItems(items)
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tFORMAT\tTYPE\tONLINE\tANONYMOUS READ\tWRITE POLICY")
			for _, raw := range items {
				var r repository
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("unexpected repository in the list: %w", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Format, r.Type, yesNo(r.Online),
					yesNo(r.AnonymousRead), r.shownWritePolicy())
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&pageSize, "page-size", defaultPageSize, "repositories fetched per request (1-1000)")
	return cmd
}

func repoCreateCommand(conn *connection) *cobra.Command {
	var (
		formatID, typ, writePolicy, settingsFile string
		anonymousRead, offline                   bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a repository",
		Long: `Create a repository. The definition is built from --settings-file (a JSON object:
a whole definition, or only format sections such as {"maven":{...}}) and the flags,
which win over the file.`,
		Example: `  arca repo create files --format raw --type hosted
  arca repo create public --format raw --anonymous-read --write-policy allow`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			def := map[string]json.RawMessage{}
			if settingsFile != "" {
				if def, err = readJSONObject(cmd, settingsFile); err != nil {
					return err
				}
			}
			if raw, ok := def["name"]; ok {
				var n string
				if json.Unmarshal(raw, &n) != nil || n != args[0] {
					return fmt.Errorf("%s names the repository %s, not %s", settingsFile, raw, args[0])
				}
			}
			set := func(key string, v any) {
				b, _ := json.Marshal(v)
				def[key] = b
			}
			set("name", args[0])
			fs := cmd.Flags()
			if fs.Changed("format") || def["format"] == nil {
				if formatID == "" {
					return fmt.Errorf("--format is required (e.g. --format raw)")
				}
				set("format", formatID)
			}
			if fs.Changed("type") || def["type"] == nil {
				set("type", typ)
			}
			if fs.Changed("offline") {
				set("online", !offline)
			}
			if fs.Changed("anonymous-read") {
				set("anonymousRead", anonymousRead)
			}
			if fs.Changed("write-policy") {
				if !writePolicies[writePolicy] {
					return fmt.Errorf("--write-policy must be allow-once, allow or deny, not %q", writePolicy)
				}
				set("writePolicy", writePolicy)
			}
			data, _, err := a.do("POST", "/api/v1/repositories", def)
			if err != nil {
				return err
			}
			return printRepository(a, data)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&formatID, "format", "", "package format, e.g. raw (required unless in --settings-file)")
	fs.StringVar(&typ, "type", "hosted", "hosted, proxy or group")
	fs.BoolVar(&anonymousRead, "anonymous-read", false, "let anyone download and list without credentials")
	fs.StringVar(&writePolicy, "write-policy", "", "allow-once (server default), allow or deny")
	fs.BoolVar(&offline, "offline", false, "create the repository switched off (it answers 503)")
	fs.StringVar(&settingsFile, "settings-file", "", "JSON file with the definition or format sections (- for stdin)")
	return cmd
}

func repoShowCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a repository's definition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			data, err := a.getJSON("/api/v1/repositories/"+pathName(args[0]), nil)
			if err != nil {
				return err
			}
			return printRepository(a, data)
		},
	}
}

func repoUpdateCommand(conn *connection) *cobra.Command {
	var (
		writePolicy, settingsFile string
		anonymousRead, online     bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change some settings of a repository, keeping the others",
		Long: `Change some settings of a repository: it reads the definition, changes only what
the flags name, and writes it back. --settings-file merges the top-level keys of a
JSON object (e.g. format sections) into the definition; each key it names is
replaced whole, so a "proxy" object must give url and username again (a password
left out is kept).`,
		Example: `  arca repo update files --write-policy allow
  arca repo update files --anonymous-read=false --online=true`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("anonymous-read") && !fs.Changed("write-policy") && !fs.Changed("online") &&
				!fs.Changed("settings-file") {
				return fmt.Errorf("nothing to change: give --anonymous-read, --write-policy, --online or --settings-file")
			}
			if fs.Changed("write-policy") && !writePolicies[writePolicy] {
				return fmt.Errorf("--write-policy must be allow-once, allow or deny, not %q", writePolicy)
			}
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			path := "/api/v1/repositories/" + pathName(args[0])
			var def map[string]json.RawMessage
			if _, err := a.getJSON(path, &def); err != nil {
				return err
			}
			// A proxy's status is shown with its definition, not part of it.
			delete(def, "proxyStatus")
			if settingsFile != "" {
				extra, err := readJSONObject(cmd, settingsFile)
				if err != nil {
					return err
				}
				for k, v := range extra {
					if k == "name" {
						continue
					}
					def[k] = v
				}
			}
			set := func(key string, v any) {
				b, _ := json.Marshal(v)
				def[key] = b
			}
			if fs.Changed("anonymous-read") {
				set("anonymousRead", anonymousRead)
			}
			if fs.Changed("write-policy") {
				set("writePolicy", writePolicy)
			}
			if fs.Changed("online") {
				set("online", online)
			}
			data, _, err := a.do("PUT", path, def)
			if err != nil {
				return err
			}
			return printRepository(a, data)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&anonymousRead, "anonymous-read", false, "let anyone download and list (true or false)")
	fs.StringVar(&writePolicy, "write-policy", "", "allow-once, allow or deny")
	fs.BoolVar(&online, "online", false, "switch the repository on or off (true or false)")
	fs.StringVar(&settingsFile, "settings-file", "", "JSON object whose keys replace those of the definition (- for stdin)")
	return cmd
}

func repoDeleteCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a repository and its content",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if _, _, err := a.do("DELETE", "/api/v1/repositories/"+pathName(args[0]), nil); err != nil {
				return err
			}
			if a.json {
				return a.printJSONValue(map[string]string{"deleted": args[0]})
			}
			_, err = fmt.Fprintf(a.out, "repository %s deleted\n", args[0])
			return err
		},
	}
}

// shownWritePolicy is the write policy for tables: proxies take no
// uploads and groups write to their write member, whose policy applies.
func (r repository) shownWritePolicy() string {
	if r.Type == "proxy" || r.Type == "group" {
		return "-"
	}
	return r.WritePolicy
}

// printRepository prints one repository definition.
func printRepository(a *apiClient, data []byte) error {
	if a.json {
		return a.printJSON(data)
	}
	var r repository
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("unexpected repository definition: %w", err)
	}
	json.Unmarshal(data, &all) //nolint:errcheck // it parsed above
	rows := [][2]string{
		{"NAME", r.Name}, {"FORMAT", r.Format}, {"TYPE", r.Type}, {"ONLINE", yesNo(r.Online)},
		{"ANONYMOUS READ", yesNo(r.AnonymousRead)}, {"WRITE POLICY", r.shownWritePolicy()},
	}
	var sections []string
	for k := range all {
		if !commonRepositoryFields[k] {
			sections = append(sections, k)
		}
	}
	sort.Strings(sections)
	for _, k := range sections {
		rows = append(rows, [2]string{k, string(all[k])})
	}
	return a.printFields(rows)
}
