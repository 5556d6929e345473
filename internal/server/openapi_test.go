package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"arca/internal/meta"
	"arca/internal/repo"
)

// The walker below sends real requests for every operation of openapi.json
// and checks each answer against the document: its status must be one the
// operation lists, and its body and headers must match that response.

// knownDisagreements are operations whose handler, for a minimal valid
// request (only the required fields), answers what the document says it
// should not. They are reported, not hidden: the minimal-body check skips
// with the reason, and logs when the handler has come to agree.
var knownDisagreements = map[string]string{}

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// sourceRoute is a route as the source registers it.
type sourceRoute struct {
	access string // anyone, authenticated or adminOnly; "" outside the API
}

var (
	apiRouteRE = regexp.MustCompile(`api\("([A-Z]+) (/[^"]*)", (\w+),`)
	muxRouteRE = regexp.MustCompile(`mux\.HandleFunc\("([A-Z]+) (/[^"]*)"`)
)

// sourceRoutes reads the method-bound routes registered in api.go (routeAPI)
// and server.go (New), keyed "METHOD /path".
func sourceRoutes(t *testing.T) map[string]sourceRoute {
	t.Helper()
	routes := map[string]sourceRoute{}
	for file, re := range map[string]*regexp.Regexp{"api.go": apiRouteRE, "server.go": muxRouteRE} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			key := m[1] + " " + m[2]
			if _, dup := routes[key]; dup {
				t.Errorf("%s registered twice", key)
			}
			r := sourceRoute{}
			if len(m) > 3 {
				r.access = m[3]
			}
			routes[key] = r
		}
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in api.go and server.go; did the registration change form?", len(routes))
	}
	return routes
}

// walkOp is one operation of the document.
type walkOp struct {
	key    string // "METHOD /path"
	method string
	path   string // the template, e.g. /api/v1/users/{name}
	op     *openapi3.Operation
	route  *routers.Route
	access string // from the source
}

func (o *walkOp) api() bool { return strings.HasPrefix(o.path, "/api/") }

// success is the operation's one 2xx status.
func (o *walkOp) success() int {
	for code := 200; code < 300; code++ {
		if o.op.Responses.Status(code) != nil {
			return code
		}
	}
	return 0
}

func (o *walkOp) documents(status int) bool { return o.op.Responses.Status(status) != nil }

// security is the operation's effective security requirements.
func (o *walkOp) security(doc *openapi3.T) openapi3.SecurityRequirements {
	if o.op.Security != nil {
		return *o.op.Security
	}
	return doc.Security
}

// optionalAuth reports whether the operation may be called without
// credentials.
func (o *walkOp) optionalAuth(doc *openapi3.T) bool {
	sec := o.security(doc)
	return len(sec) == 0 || slices.ContainsFunc(sec, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
}

func (o *walkOp) pathParams() []string {
	var names []string
	for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(o.path, -1) {
		names = append(names, m[1])
	}
	return names
}

func (o *walkOp) hasQuery(name string) bool {
	params := append(openapi3.Parameters{}, o.route.PathItem.Parameters...)
	params = append(params, o.op.Parameters...)
	return slices.ContainsFunc(params, func(p *openapi3.ParameterRef) bool {
		return p.Value.In == "query" && p.Value.Name == name
	})
}

// bodySchema is the operation's JSON request body schema, or nil.
func (o *walkOp) bodySchema() *openapi3.MediaType {
	if o.op.RequestBody == nil {
		return nil
	}
	return o.op.RequestBody.Value.Content.Get("application/json")
}

// operations lists the document's operations in a stable order.
func operations(t *testing.T, doc *openapi3.T) []*walkOp {
	t.Helper()
	var ops []*walkOp
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, &walkOp{key: method + " " + path, method: method, path: path, op: op,
				route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if len(doc.Servers) > 1 || (len(doc.Servers) == 1 && doc.Servers[0].URL != "/") {
		t.Errorf("servers = %v; the document names no host", doc.Servers)
	}
	ids := map[string]string{}
	for _, o := range operations(t, doc) {
		t.Run(o.key, func(t *testing.T) {
			if o.op.OperationID == "" || o.op.Summary == "" {
				t.Errorf("operationId %q, summary %q: both are needed", o.op.OperationID, o.op.Summary)
			}
			if other, dup := ids[o.op.OperationID]; dup {
				t.Errorf("operationId %q is also %s", o.op.OperationID, other)
			}
			ids[o.op.OperationID] = o.key
			if o.op.Responses.Default() != nil {
				t.Error("a default response would let any status pass; list the statuses")
			}
			successes := 0
			for code, r := range o.op.Responses.Map() {
				if strings.HasPrefix(code, "2") {
					successes++
					continue
				}
				if !o.api() {
					continue
				}
				mt := r.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("response %s is not the Error document", code)
				}
			}
			if successes != 1 {
				t.Errorf("%d success statuses; the walker expects exactly one", successes)
			}
			if !o.api() {
				return
			}
			// Every API call authenticates first: wrong credentials are a 401
			// anywhere, and the stores may fail.
			want := []int{401, 500}
			if o.bodySchema() != nil {
				want = append(want, 400, 413)
			}
			if len(o.pathParams()) > 0 {
				want = append(want, 400, 404)
			}
			if o.hasQuery("limit") {
				want = append(want, 400)
			}
			for _, code := range want {
				if !o.documents(code) {
					t.Errorf("status %d is not documented", code)
				}
			}
		})
	}
}

// TestOpenAPIRoutes checks that the document and the routes registered in
// api.go and server.go are the same set, and that the running server routes
// each documented operation to the handler registered under its pattern.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	routes := sourceRoutes(t)
	documented := map[string]bool{}
	for _, o := range operations(t, doc) {
		documented[o.key] = true
		r, ok := routes[o.key]
		if !ok {
			t.Errorf("%s is documented but not registered", o.key)
			continue
		}
		switch r.access {
		case "anyone":
			if !o.optionalAuth(doc) {
				t.Errorf("%s is open to anyone but its security requires credentials", o.key)
			}
		case "authenticated", "adminOnly":
			if o.optionalAuth(doc) {
				t.Errorf("%s needs credentials but its security makes them optional", o.key)
			}
			if r.access == "adminOnly" && !o.documents(http.StatusForbidden) {
				t.Errorf("%s is for admins but does not document 403", o.key)
			}
		case "":
			if o.op.Security == nil || len(*o.op.Security) != 0 {
				t.Errorf("%s is outside the API and takes no credentials; want security: []", o.key)
			}
		default:
			t.Errorf("%s: unknown access level %q in api.go", o.key, r.access)
		}
	}
	for key := range routes {
		if !documented[key] {
			t.Errorf("%s is registered but not documented", key)
		}
	}

	// Wrong credentials reach every API route without changing anything; the
	// access line names the pattern that answered.
	e := newTestEnv(t, Options{})
	for _, o := range operations(t, doc) {
		path := strings.NewReplacer("{name}", "x", "{id}", "x").Replace(o.path)
		id := fmt.Sprintf("route-%s", o.op.OperationID)
		resp := e.do(t, o.method, path, nil, header("Authorization", "Bearer arca_wrong"), header("X-Request-Id", id))
		if !o.api() {
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d, want 200", o.key, resp.StatusCode)
			}
			continue
		}
		line := e.waitForLog(t, func(l map[string]any) bool { return l["request_id"] == id })
		if line["route"] != o.key {
			t.Errorf("%s %s was routed to %q", o.method, path, line["route"])
		}
	}
}

// walker sends requests for the document's operations to a test server.
type walker struct {
	e *testEnv
	// admin authenticates as the admin with a token: a password costs a
	// bcrypt comparison each time a user change empties the cache.
	admin      reqOption
	adminToken string
	plain      reqOption // a user who is no admin and holds no permission
	n          int       // for fresh names
	seen       map[string]map[int]bool
}

func (w *walker) fresh() string {
	w.n++
	return fmt.Sprintf("walk%d", w.n)
}

// fixture creates what the path parameter of o names and returns its name.
func (w *walker) fixture(t *testing.T, o *walkOp, param string) string {
	t.Helper()
	switch {
	case strings.HasPrefix(o.path, "/api/v1/repositories/{name}/pypi/"):
		// A PyPI repository with one file of demo 1.0 (its row only).
		switch param {
		case "project":
			return "demo"
		case "version":
			return "1.0"
		}
		name := w.fresh()
		w.e.repos.RegisterFormat("pypi", func(*repo.Repository, json.RawMessage) error { return nil })
		w.e.createRepo(t, `{"name":"`+name+`","format":"pypi","type":"hosted"}`)
		rp, err := w.e.repos.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.e.db.PyPI().PutPyPIFile(context.Background(), &meta.PyPIFile{RepositoryID: rp.ID,
			Filename: "demo-1.0.tar.gz", Project: "demo", Version: "1.0", Path: "packages/demo/1.0/demo-1.0.tar.gz",
			SHA256: strings.Repeat("0", 64)}); err != nil {
			t.Fatal(err)
		}
		return name
	case strings.HasPrefix(o.path, "/api/v1/repositories/{") && param == "name":
		name := w.fresh()
		w.e.createRepo(t, `{"name":"`+name+`","format":"raw","type":"hosted"}`)
		return name
	case strings.HasPrefix(o.path, "/api/v1/users/{") && param == "name":
		name := w.fresh()
		w.e.createUser(t, name, name+"-password")
		return name
	case strings.HasPrefix(o.path, "/api/v1/tokens/{") && param == "id":
		resp := w.e.do(t, http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"`+w.fresh()+`"}`), w.admin)
		var tok struct{ ID string }
		if err := json.Unmarshal(resp.body, &tok); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create token: %d %s", resp.StatusCode, resp.body)
		}
		return tok.ID
	}
	t.Fatalf("%s: the walker has no fixture for {%s}; teach it one", o.key, param)
	return ""
}

// fill replaces o's path parameters: with fresh fixtures, or with value.
func (w *walker) fill(t *testing.T, o *walkOp, value string) (string, map[string]string) {
	t.Helper()
	path, params := o.path, map[string]string{}
	for _, p := range o.pathParams() {
		v := value
		if v == "" {
			v = w.fixture(t, o, p)
		}
		params[p] = v
		path = strings.Replace(path, "{"+p+"}", v, 1)
	}
	return path, params
}

// body is o's example request body, with "name" set to the path's name or,
// for a create, to a fresh one. With minimal set, it keeps only the
// required fields.
func (w *walker) body(t *testing.T, o *walkOp, params map[string]string, minimal bool) []byte {
	t.Helper()
	mt := o.bodySchema()
	if mt == nil || mt.Example == nil {
		t.Fatalf("%s: the request body has no example to send", o.key)
	}
	b, err := json.Marshal(mt.Example)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: the example is not an object: %v", o.key, err)
	}
	if minimal {
		keep := requiredKeys(mt.Schema.Value)
		for k := range v {
			if !slices.Contains(keep, k) {
				delete(v, k)
			}
		}
	}
	if _, has := v["name"]; has {
		switch {
		case params["name"] != "":
			v["name"] = params["name"]
		case o.documents(http.StatusConflict):
			v["name"] = w.fresh()
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func requiredKeys(s *openapi3.Schema) []string {
	keys := slices.Clone(s.Required)
	for _, sub := range s.AllOf {
		keys = append(keys, requiredKeys(sub.Value)...)
	}
	return keys
}

// exchange is a request sent and its answer.
type exchange struct {
	o      *walkOp
	method string
	target string // path and query
	params map[string]string
	body   []byte // nil: none
	opts   []reqOption
	resp   response
}

// request rebuilds the request, for the validator to read.
func (x *exchange) request() *http.Request {
	var body io.Reader = http.NoBody
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req := httptest.NewRequest(x.method, x.target, body)
	for _, o := range x.opts {
		o(req)
	}
	return req
}

var jsonBody = header("Content-Type", "application/json")

// send sends a request for o.
func (w *walker) send(t *testing.T, o *walkOp, target string, params map[string]string, body []byte, opts ...reqOption) *exchange {
	t.Helper()
	if body != nil {
		opts = append([]reqOption{jsonBody}, opts...)
	}
	x := &exchange{o: o, method: o.method, target: target, params: params, body: body, opts: opts}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	x.resp = w.e.do(t, o.method, target, rd, opts...)
	return x
}

// validateRequest reports whether the document accepts the request.
func (w *walker) validateRequest(x *exchange) error {
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: x.request(), PathParams: x.params, Route: x.o.route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true},
	})
}

// validateResponse checks the answer against the operation's documented
// response for its status.
func (w *walker) validateResponse(x *exchange) error {
	resp := x.resp
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: x.request(), PathParams: x.params, Route: x.o.route},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(resp.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

var errorCodes = map[int]string{400: "INVALID", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
	409: "CONFLICT", 413: "TOO_LARGE", 500: "INTERNAL", 503: "UNAVAILABLE"}

// check checks an answer: its status is documented (and one of want, when
// given), and it matches the document.
func (w *walker) check(t *testing.T, x *exchange, want ...int) {
	t.Helper()
	o, resp := x.o, x.resp
	if w.seen[o.key] == nil {
		w.seen[o.key] = map[int]bool{}
	}
	w.seen[o.key][resp.StatusCode] = true
	if !o.documents(resp.StatusCode) {
		t.Errorf("%s %s: status %d is not documented (body %q)", x.method, x.target, resp.StatusCode, resp.body)
		return
	}
	if len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
		t.Errorf("%s %s: status %d, want %v (body %q)", x.method, x.target, resp.StatusCode, want, resp.body)
	}
	if err := w.validateResponse(x); err != nil {
		t.Errorf("%s %s: the %d answer does not match the document: %v\nbody: %s",
			x.method, x.target, resp.StatusCode, err, resp.body)
	}
	documented := o.op.Responses.Status(resp.StatusCode).Value.Headers
	for _, h := range []string{"Location", "WWW-Authenticate"} {
		if resp.Header.Get(h) != "" && documented[h] == nil {
			t.Errorf("%s %s: the %d answer has a %s header the document does not list", x.method, x.target, resp.StatusCode, h)
		}
	}
	if resp.StatusCode == http.StatusNoContent && len(resp.body) != 0 {
		t.Errorf("%s %s: 204 with a body %q", x.method, x.target, resp.body)
	}
	if resp.StatusCode >= 400 && o.api() {
		if code, _ := resp.jsonError(t); code != errorCodes[resp.StatusCode] {
			t.Errorf("%s %s: %d with code %s, want %s", x.method, x.target, resp.StatusCode, code, errorCodes[resp.StatusCode])
		}
	}
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="arca"` {
		t.Errorf("%s %s: 401 with WWW-Authenticate %q", x.method, x.target, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestOpenAPIWalk(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	routes := sourceRoutes(t)
	e := newTestEnv(t, Options{Version: "walk"})
	// The examples grant permissions on "docs".
	e.createRepo(t, `{"name":"docs","format":"raw","type":"hosted"}`)
	e.createUser(t, "plain", "plain-password")
	resp := e.do(t, http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"walker"}`), asAdmin)
	var tok struct{ Token string }
	if err := json.Unmarshal(resp.body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("create the admin's token: %d %s", resp.StatusCode, resp.body)
	}
	w := &walker{e: e, seen: map[string]map[int]bool{},
		admin: header("Authorization", "Bearer "+tok.Token), adminToken: tok.Token, plain: basicAuth("plain", "plain-password")}

	ops := operations(t, doc)
	for _, o := range ops {
		o.access = routes[o.key].access
		t.Run(o.op.OperationID, func(t *testing.T) { w.walk(t, o) })
	}

	// Conflicts no create can show.
	byKey := map[string]*walkOp{}
	for _, o := range ops {
		byKey[o.key] = o
	}
	for _, c := range []struct{ key, target, body string }{
		{"DELETE /api/v1/users/{name}", "/api/v1/users/admin", ""},
		{"PUT /api/v1/users/{name}", "/api/v1/users/admin", `{"admin":false}`},
	} {
		t.Run("last admin "+c.key, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			w.check(t, w.send(t, byKey[c.key], c.target, map[string]string{"name": "admin"}, body, w.admin),
				http.StatusConflict)
		})
	}
	t.Run("gc while another node runs it", func(t *testing.T) {
		// "gc" is the lease a run takes (gc.leaseName).
		ctx := context.Background()
		if ok, err := e.db.Queries().AcquireLease(ctx, "gc", "another node", time.Minute); err != nil || !ok {
			t.Fatalf("take the gc lease: %v %v", ok, err)
		}
		defer e.db.Queries().ReleaseLease(ctx, "gc", "another node") //nolint:errcheck // test
		w.check(t, w.send(t, byKey["POST /api/v1/gc"], "/api/v1/gc", nil, []byte(`{"dryRun":true}`), w.admin),
			http.StatusConflict)
	})

	// What no request showed, but for the 500 no request can provoke.
	for _, o := range ops {
		var missing []string
		for code := range o.op.Responses.Map() {
			var n int
			fmt.Sscan(code, &n) //nolint:errcheck // every key is a status
			if n != http.StatusInternalServerError && !w.seen[o.key][n] {
				missing = append(missing, code)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			t.Logf("%s: documented but not exercised: %s", o.key, strings.Join(missing, ", "))
		}
	}
}

// walk sends o every kind of request the walker knows.
func (w *walker) walk(t *testing.T, o *walkOp) {
	hasBody := o.bodySchema() != nil
	validBody := func(t *testing.T, params map[string]string, minimal bool) []byte {
		if !hasBody {
			return nil
		}
		return w.body(t, o, params, minimal)
	}

	t.Run("anonymous", func(t *testing.T) {
		path, params := w.fill(t, o, "")
		x := w.send(t, o, path, params, validBody(t, params, false))
		switch {
		case !o.api():
			w.check(t, x, o.success())
		case o.access == "anyone":
			w.check(t, x)
		default:
			w.check(t, x, http.StatusUnauthorized)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		path, params := w.fill(t, o, "")
		x := w.send(t, o, path, params, validBody(t, params, false), header("Authorization", "Bearer arca_wrong"))
		if o.api() {
			w.check(t, x, http.StatusUnauthorized)
		} else {
			w.check(t, x, o.success())
		}
	})

	if o.api() {
		t.Run("not an admin", func(t *testing.T) {
			path, params := w.fill(t, o, "")
			x := w.send(t, o, path, params, validBody(t, params, false), w.plain)
			if o.access == "adminOnly" {
				w.check(t, x, http.StatusForbidden)
			} else {
				w.check(t, x)
			}
		})
	}

	// The admin's request with the example body, with a password; a GET is
	// sent again with the admin's token.
	t.Run("admin", func(t *testing.T) {
		path, params := w.fill(t, o, "")
		body := validBody(t, params, false)
		id := "walk-" + o.op.OperationID
		x := w.send(t, o, path, params, body, asAdmin, header("X-Request-Id", id))
		if err := w.validateRequest(x); err != nil {
			t.Errorf("the document refuses the request the walker sends: %v", err)
		}
		w.check(t, x, o.success())
		if o.api() {
			line := w.e.waitForLog(t, func(l map[string]any) bool { return l["request_id"] == id })
			if line["route"] != o.key {
				t.Errorf("answered by route %q", line["route"])
			}
		}
		if o.success() == http.StatusCreated && len(params) == 0 && o.documents(http.StatusConflict) {
			w.check(t, w.send(t, o, path, params, body, w.admin), http.StatusConflict)
		}
		if o.method == http.MethodGet && o.api() {
			w.check(t, w.send(t, o, path, params, nil, w.admin), o.success())
		}
		if o.op.OperationID == "getOpenAPI" && !bytes.Equal(x.resp.body, openAPIDocument) {
			t.Error("the served document is not the embedded one")
		}
	})

	w.unknown(t, o)
	w.badSegment(t, o)
	w.paging(t, o)
	if !hasBody {
		return
	}

	t.Run("minimal body", func(t *testing.T) {
		path, params := w.fill(t, o, "")
		x := w.send(t, o, path, params, validBody(t, params, true), w.admin)
		if err := w.validateRequest(x); err != nil {
			t.Errorf("the document refuses the minimal request: %v", err)
		}
		if x.resp.StatusCode != o.success() {
			t.Fatalf("status %d, want %d (body %s)", x.resp.StatusCode, o.success(), x.resp.body)
		}
		err := w.validateResponse(x)
		reason, known := knownDisagreements[o.op.OperationID]
		switch {
		case err != nil && known:
			t.Skipf("known disagreement of the handler with the document: %s: %v", reason, err)
		case err != nil:
			t.Errorf("the answer does not match the document: %v\nbody: %s", err, x.resp.body)
		case known:
			t.Logf("the handler now agrees with the document; remove %q from knownDisagreements", o.op.OperationID)
		}
	})

	if !o.op.RequestBody.Value.Required {
		t.Run("no body", func(t *testing.T) {
			path, params := w.fill(t, o, "")
			w.check(t, w.send(t, o, path, params, nil, w.admin), o.success())
		})
	}

	// Broken JSON, not an object, the valid example with a field no one
	// knows, and no body where one is required.
	invalid := []string{`{"name":`, `[1,2]`, "unknown field"}
	if o.op.RequestBody.Value.Required {
		invalid = append(invalid, "")
	}
	for _, b := range invalid {
		t.Run(fmt.Sprintf("invalid body %q", b), func(t *testing.T) {
			path, params := w.fill(t, o, "")
			if b == "unknown field" {
				valid := w.body(t, o, params, false)
				b = `{"unknownField":1}`
				if len(valid) > 2 {
					b = `{"unknownField":1,` + string(valid[1:])
				}
			}
			x := w.send(t, o, path, params, []byte(b), w.admin)
			if err := w.validateRequest(x); err == nil {
				t.Errorf("the document accepts the body %q the handler must refuse", b)
			}
			w.check(t, x, http.StatusBadRequest)
		})
	}

	t.Run("body too large", func(t *testing.T) {
		path, params := w.fill(t, o, "")
		b := []byte(`{"name":"` + strings.Repeat("a", maxAPIBody) + `"}`)
		w.check(t, w.send(t, o, path, params, b, w.admin), http.StatusRequestEntityTooLarge)
	})
}

// unknown asks for what does not exist.
func (w *walker) unknown(t *testing.T, o *walkOp) {
	if len(o.pathParams()) == 0 {
		return
	}
	t.Run("unknown", func(t *testing.T) {
		path, params := w.fill(t, o, "nope")
		var body []byte
		if o.bodySchema() != nil {
			body = w.body(t, o, params, false)
		}
		w.check(t, w.send(t, o, path, params, body, w.admin), http.StatusNotFound)
	})
}

// badSegment sends a path parameter the edge refuses before routing.
func (w *walker) badSegment(t *testing.T, o *walkOp) {
	if len(o.pathParams()) == 0 {
		return
	}
	t.Run("bad path segment", func(t *testing.T) {
		path, params := w.fill(t, o, `a%5cb`)
		for k := range params {
			params[k] = `a\b`
		}
		resp := w.e.rawDo(t, o.method+" "+path+" HTTP/1.1\r\nHost: arca.test\r\nAuthorization: Bearer "+w.adminToken+
			"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		x := &exchange{o: o, method: o.method, target: path, params: params,
			opts: []reqOption{w.admin}, resp: resp}
		w.check(t, x, http.StatusBadRequest)
	})
}

// paging checks ?limit= and ?after= of a list.
func (w *walker) paging(t *testing.T, o *walkOp) {
	if !o.hasQuery("limit") {
		return
	}
	for _, limit := range []string{"0", "1001", "x"} {
		t.Run("limit="+limit, func(t *testing.T) {
			w.check(t, w.send(t, o, o.path+"?limit="+limit, nil, nil, w.admin), http.StatusBadRequest)
		})
	}
	t.Run("two pages", func(t *testing.T) {
		first := w.send(t, o, o.path+"?limit=1", nil, nil, w.admin)
		w.check(t, first, http.StatusOK)
		type page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		var p1, p2 page
		if err := json.Unmarshal(first.resp.body, &p1); err != nil || len(p1.Items) != 1 || p1.Next == "" {
			t.Fatalf("first page of one: %s (%v); the walker made sure there is more than one item", first.resp.body, err)
		}
		second := w.send(t, o, o.path+"?limit=1&after="+url.QueryEscape(p1.Next), nil, nil, w.admin)
		w.check(t, second, http.StatusOK)
		if err := json.Unmarshal(second.resp.body, &p2); err != nil || len(p2.Items) != 1 {
			t.Fatalf("second page: %s (%v)", second.resp.body, err)
		}
		if bytes.Equal(p1.Items[0], p2.Items[0]) {
			t.Errorf("the second page repeats the first: %s", p1.Items[0])
		}
	})
}
