package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"arca/internal/proxy"
	"arca/internal/repo"
)

// upstreamAuth speaks the Docker token protocol as a client, for proxy
// repositories whose upstream registry answers 401 with a Bearer
// challenge: it learns the realm once per upstream, asks it for a token per
// scope (with the proxy's username and password as basic auth, or
// anonymously) and keeps each token until shortly before it expires.
//
// The headers made here go into proxy.Item.Header, which the cache sends
// instead of the proxy's basic auth, and into the format's own HEADs. An
// upstream without a Bearer challenge gets the proxy's credentials as
// they are.
type upstreamAuth struct {
	client *http.Client

	mu         sync.Mutex
	challenges map[string]challengeInfo // by upstream root URL
	tokens     map[tokenKey]upstreamToken
}

// challengeInfo is what an upstream's /v2/ answered: a Bearer challenge
// (realm and service) or none, which means its requests need no token.
type challengeInfo struct {
	bearer         bool
	realm, service string
	checked        time.Time
}

// tokenKey names a token: who asked it of which upstream, for what.
type tokenKey struct {
	upstream, username, password, scope string
}

type upstreamToken struct {
	value   string
	expires time.Time
}

// challengeTTL is how long an upstream's answer to /v2/ is believed: an
// upstream rarely changes how it authenticates.
const challengeTTL = time.Hour

// defaultTokenLifetime is what the token protocol says to assume when the
// token server names no expires_in.
const defaultTokenLifetime = 60 * time.Second

func newUpstreamAuth() *upstreamAuth {
	return &upstreamAuth{
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil, // an upstream is reached directly, as the cache does
			// Digests and manifests are read as the upstream sent them.
			DisableCompression: true,
		}},
		challenges: map[string]challengeInfo{},
		tokens:     map[tokenKey]upstreamToken{},
	}
}

// requestTimeout bounds one request of ours to the upstream, from the
// proxy's timeouts.
func requestTimeout(s repo.ProxySettings) time.Duration {
	d := time.Duration(s.ConnectTimeout) + time.Duration(s.ReadTimeout)
	if d <= 0 {
		return time.Minute
	}
	return d
}

// root is an upstream's URL without a trailing slash.
func root(s repo.ProxySettings) string { return strings.TrimSuffix(s.URL, "/") }

// scopeOf is the token scope that pulls an upstream image.
func scopeOf(upstreamImage string) string { return "repository:" + upstreamImage + ":pull" }

// header returns the Authorization header to send for scope: a Bearer
// token when the upstream wants one, else nil, leaving the proxy's own
// basic auth or static token to the caller.
func (a *upstreamAuth) header(ctx context.Context, s repo.ProxySettings, scope string) (http.Header, error) {
	if s.BearerToken != "" {
		// A configured token is sent as is by the cache; there is no
		// token server to ask.
		return nil, nil
	}
	k := tokenKey{root(s), s.Username, s.Password, scope}
	now := time.Now()
	a.mu.Lock()
	tok, haveTok := a.tokens[k]
	ch, haveCh := a.challenges[k.upstream]
	a.mu.Unlock()
	if haveTok && now.Before(tok.expires) {
		return bearer(tok.value), nil
	}
	if !haveCh || now.Sub(ch.checked) > challengeTTL {
		var err error
		if ch, err = a.probe(ctx, s); err != nil {
			return nil, err
		}
	}
	if !ch.bearer {
		return nil, nil
	}
	value, err := a.fetchToken(ctx, s, ch, k)
	if err != nil {
		return nil, err
	}
	return bearer(value), nil
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// forget drops the token of scope, after the upstream refused it.
func (a *upstreamAuth) forget(s repo.ProxySettings, scope string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, tokenKey{root(s), s.Username, s.Password, scope})
}

// learn notes the Bearer challenge an upstream answered a request with, so
// that later requests fetch tokens without probing.
func (a *upstreamAuth) learn(s repo.ProxySettings, ch challengeInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.challenges[root(s)] = ch
}

// probe asks the upstream's version check, anonymously as Docker clients
// do, how it authenticates: a Bearer challenge means tokens; anything else
// (200, or a Basic challenge) means the proxy's own credentials suffice.
func (a *upstreamAuth) probe(ctx context.Context, s repo.ProxySettings) (challengeInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout(s))
	defer cancel()
	u := root(s) + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return challengeInfo{}, fmt.Errorf("upstream %s: %w", u, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return challengeInfo{}, &proxy.UpstreamError{URL: u, Err: err}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // drained for reuse only
	resp.Body.Close()
	ch := challengeInfo{checked: time.Now()}
	if resp.StatusCode == http.StatusUnauthorized {
		if c, ok := parseChallenge(resp.Header.Values("WWW-Authenticate")); ok {
			ch.bearer, ch.realm, ch.service = true, c.realm, c.service
		}
	} else if resp.StatusCode >= 500 {
		// Not remembered: the next request probes again.
		return challengeInfo{}, &proxy.UpstreamError{URL: u, Status: resp.StatusCode}
	}
	a.learn(s, ch)
	return ch, nil
}

// fetchToken gets a token for k.scope from the challenge's realm and keeps
// it.
func (a *upstreamAuth) fetchToken(ctx context.Context, s repo.ProxySettings, ch challengeInfo, k tokenKey) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout(s))
	defer cancel()
	realm, err := url.Parse(root(s) + "/")
	if err == nil {
		// A relative realm is resolved against the upstream.
		realm, err = realm.Parse(ch.realm)
	}
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") {
		return "", &proxy.UpstreamError{URL: root(s), Err: fmt.Errorf("token realm %q is not an http(s) URL", ch.realm)}
	}
	q := realm.Query()
	if ch.service != "" {
		q.Set("service", ch.service)
	}
	q.Set("scope", k.scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if s.Username != "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return "", &proxy.UpstreamError{URL: realm.String(), Err: fmt.Errorf("token request: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &proxy.UpstreamError{URL: realm.String(), Status: resp.StatusCode,
			Err: fmt.Errorf("token request for %s refused", k.scope)}
	}
	var doc struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", &proxy.UpstreamError{URL: realm.String(), Err: fmt.Errorf("token response: %w", err)}
	}
	value := doc.Token
	if value == "" {
		value = doc.AccessToken
	}
	if value == "" {
		return "", &proxy.UpstreamError{URL: realm.String(), Err: fmt.Errorf("token response holds no token")}
	}
	life := defaultTokenLifetime
	if doc.ExpiresIn > 0 {
		life = time.Duration(doc.ExpiresIn) * time.Second
	}
	// Renewed a little early, so that a token does not expire between
	// being handed out and reaching the upstream.
	life -= min(life/10, 10*time.Second)
	a.mu.Lock()
	a.tokens[k] = upstreamToken{value: value, expires: time.Now().Add(life)}
	a.mu.Unlock()
	return value, nil
}

// challengeParams is a parsed Bearer challenge.
type challengeParams struct {
	realm, service, scope string
}

// parseChallenge reads the Bearer challenge among WWW-Authenticate values:
// Bearer realm="...",service="...",scope="...". Quoted values may hold
// commas (a scope "repository:a:pull,push").
func parseChallenge(values []string) (challengeParams, bool) {
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		params := authParams(rest)
		if params["realm"] == "" {
			continue
		}
		return challengeParams{realm: params["realm"], service: params["service"], scope: params["scope"]}, true
	}
	return challengeParams{}, false
}

// authParams splits key=value and key="quoted value" pairs separated by
// commas.
func authParams(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return out
		}
		key = strings.ToLower(strings.TrimSpace(key))
		rest = strings.TrimLeft(rest, " \t")
		var val strings.Builder
		if strings.HasPrefix(rest, `"`) {
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				val.WriteByte(rest[i])
			}
			s = rest[min(i+1, len(rest)):]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val.WriteString(strings.TrimSpace(rest[:end]))
			s = rest[end:]
		}
		out[key] = val.String()
	}
}
