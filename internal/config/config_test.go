package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"arca/internal/config"
)

func TestEnvName(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"baseURL", "ARCA_BASE_URL"},
		{"uploadSessionTTL", "ARCA_UPLOAD_SESSION_TTL"},
		{"trustedProxies", "ARCA_TRUSTED_PROXIES"},
		{"logFormat", "ARCA_LOG_FORMAT"},
		{"data", "ARCA_DATA"},
		{"database.maxConnections", "ARCA_DATABASE_MAX_CONNECTIONS"},
		{"adminPassword", "ARCA_ADMIN_PASSWORD"},
		{"listen", "ARCA_LISTEN"},
		{"logLevel", "ARCA_LOG_LEVEL"},
		{"URLPath", "ARCA_URL_PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := config.EnvName(tt.key); got != tt.want {
				t.Errorf("EnvName(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

// writeFile writes content to a file in a fresh temporary folder.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "arca.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fullFile = `
data: /srv/arca
listen: 0.0.0.0:9000
baseURL: https://arca.example.com
trustedProxies:
  - 10.0.0.0/8
  - 192.168.1.0/24
logFormat: json
logLevel: debug
uploadSessionTTL: 90m
adminPassword: s3cret
gc:
  gracePeriod: 2h
  schedule: 24h
`

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    func() config.Config
		wantErr string
	}{
		{
			name:    "all keys",
			content: fullFile,
			want: func() config.Config {
				return config.Config{
					Data:             "/srv/arca",
					Listen:           "0.0.0.0:9000",
					BaseURL:          "https://arca.example.com",
					TrustedProxies:   []string{"10.0.0.0/8", "192.168.1.0/24"},
					LogFormat:        "json",
					LogLevel:         "debug",
					UploadSessionTTL: config.Duration(90 * time.Minute),
					AdminPassword:    "s3cret",
					GC: config.GC{GracePeriod: config.Duration(2 * time.Hour),
						Schedule: config.Duration(24 * time.Hour)},
				}
			},
		},
		{
			name:    "some keys keep the other defaults",
			content: "listen: :8081\nuploadSessionTTL: 1h30s\n",
			want: func() config.Config {
				c := config.Default()
				c.Listen = ":8081"
				c.UploadSessionTTL = config.Duration(time.Hour + 30*time.Second)
				return c
			},
		},
		{
			name:    "empty file",
			content: "",
			want:    config.Default,
		},
		{
			name:    "comments only",
			content: "# nothing here\n",
			want:    config.Default,
		},
		{
			name:    "unknown key",
			content: "listen: :8081\nbaseUrl: http://x\n",
			wantErr: "line 2: field baseUrl not found",
		},
		{
			name:    "bad duration",
			content: "uploadSessionTTL: 90\n",
			wantErr: "missing unit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			err := c.LoadFile(writeFile(t, tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadFile error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if want := tt.want(); !reflect.DeepEqual(c, want) {
				t.Errorf("config = %+v\nwant     %+v", c, want)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	c := config.Default()
	if err := c.LoadFile(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(t *testing.T, c config.Config)
		wantErr []string
	}{
		{
			name: "overrides file values",
			environ: []string{
				"ARCA_LISTEN=:7000", "ARCA_BASE_URL=http://env.example",
				"ARCA_LOG_LEVEL=warn", "ARCA_ADMIN_PASSWORD=fromenv",
			},
			check: func(t *testing.T, c config.Config) {
				if c.Listen != ":7000" || c.BaseURL != "http://env.example" ||
					c.LogLevel != "warn" || c.AdminPassword != "fromenv" {
					t.Errorf("env did not override: %+v", c)
				}
				if c.Data != "/srv/arca" || c.LogFormat != "json" {
					t.Errorf("values not in the environment changed: %+v", c)
				}
			},
		},
		{
			name:    "list split on commas",
			environ: []string{"ARCA_TRUSTED_PROXIES=10.0.0.0/8, 172.16.0.0/12,,fd00::/8 "},
			check: func(t *testing.T, c config.Config) {
				want := []string{"10.0.0.0/8", "172.16.0.0/12", "fd00::/8"}
				if !reflect.DeepEqual(c.TrustedProxies, want) {
					t.Errorf("TrustedProxies = %q, want %q", c.TrustedProxies, want)
				}
			},
		},
		{
			name:    "duration",
			environ: []string{"ARCA_UPLOAD_SESSION_TTL=45s"},
			check: func(t *testing.T, c config.Config) {
				if got := time.Duration(c.UploadSessionTTL); got != 45*time.Second {
					t.Errorf("UploadSessionTTL = %v, want 45s", got)
				}
			},
		},
		{
			name:    "duration parse error names the variable",
			environ: []string{"ARCA_UPLOAD_SESSION_TTL=soon"},
			wantErr: []string{"ARCA_UPLOAD_SESSION_TTL", "soon"},
		},
		{
			name: "unknown ARCA_ variables are ignored",
			environ: []string{
				"ARCA_URL=http://client.example", "ARCA_TOKEN=abc", "ARCA_CONFIG=/x.yaml",
				"ARCA_=1", "ARCA_LISTEN_ADDR=:1", "HOME=/root", "NOEQUALS",
			},
			check: func(t *testing.T, c config.Config) {
				// The file's values must still be there.
				if c.Listen != "0.0.0.0:9000" || c.BaseURL != "https://arca.example.com" {
					t.Errorf("unknown variables changed settings: %+v", c)
				}
			},
		},
		{
			name:    "lower-case name is not a setting",
			environ: []string{"arca_listen=:1", "ARCA_listen=:2"},
			check: func(t *testing.T, c config.Config) {
				if c.Listen != "0.0.0.0:9000" {
					t.Errorf("Listen = %q, want the file's value", c.Listen)
				}
			},
		},
		{
			name:    "value containing '='",
			environ: []string{"ARCA_ADMIN_PASSWORD=a=b=c"},
			check: func(t *testing.T, c config.Config) {
				if c.AdminPassword != "a=b=c" {
					t.Errorf("AdminPassword = %q, want a=b=c", c.AdminPassword)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			if err := c.LoadFile(writeFile(t, fullFile)); err != nil {
				t.Fatal(err)
			}
			err := c.LoadEnv(tt.environ)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("LoadEnv succeeded, want an error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: :8001\nlogLevel: debug\n")
	environ := []string{"ARCA_LOG_LEVEL=error"}
	tests := []struct {
		name     string
		useFile  bool
		useEnv   bool
		listen   string
		logLevel string
	}{
		{"defaults only", false, false, "127.0.0.1:8080", "info"},
		{"file over defaults", true, false, ":8001", "debug"},
		{"env over defaults", false, true, "127.0.0.1:8080", "error"},
		{"env over file over defaults", true, true, ":8001", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			if tt.useFile {
				if err := c.LoadFile(file); err != nil {
					t.Fatal(err)
				}
			}
			if tt.useEnv {
				if err := c.LoadEnv(environ); err != nil {
					t.Fatal(err)
				}
			}
			if c.Listen != tt.listen || c.LogLevel != tt.logLevel {
				t.Errorf("listen=%q logLevel=%q, want %q %q", c.Listen, c.LogLevel, tt.listen, tt.logLevel)
			}
			if c.LogFormat != "text" || c.UploadSessionTTL != config.Duration(24*time.Hour) {
				t.Errorf("untouched defaults changed: %+v", c)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(c *config.Config) {}, nil},
		{"valid everything", func(c *config.Config) {
			c.Listen = ":80"
			c.BaseURL = "https://arca.example.com/prefix"
			c.TrustedProxies = []string{"10.0.0.0/8", "::1/128"}
			c.LogFormat = "json"
			c.LogLevel = "error"
		}, nil},
		{"empty data", func(c *config.Config) { c.Data = "" }, []string{"data"}},
		{"listen without port", func(c *config.Config) { c.Listen = "localhost" }, []string{"listen"}},
		{"baseURL not http", func(c *config.Config) { c.BaseURL = "ftp://arca.example.com" }, []string{"baseURL"}},
		{"baseURL without host", func(c *config.Config) { c.BaseURL = "http://" }, []string{"baseURL"}},
		{"baseURL relative", func(c *config.Config) { c.BaseURL = "arca.example.com" }, []string{"baseURL"}},
		{"bad CIDR", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.300/8"} }, []string{"trustedProxies"}},
		{"address without prefix length", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.1"} }, []string{"trustedProxies"}},
		{"bad logFormat", func(c *config.Config) { c.LogFormat = "xml" }, []string{"logFormat"}},
		{"bad logLevel", func(c *config.Config) { c.LogLevel = "verbose" }, []string{"logLevel"}},
		{"zero TTL", func(c *config.Config) { c.UploadSessionTTL = 0 }, []string{"uploadSessionTTL"}},
		{"negative TTL", func(c *config.Config) { c.UploadSessionTTL = config.Duration(-time.Second) }, []string{"uploadSessionTTL"}},
		{"several at once", func(c *config.Config) {
			c.Listen = "nope"
			c.BaseURL = "gopher://x"
			c.TrustedProxies = []string{"bad"}
			c.LogFormat = "xml"
			c.LogLevel = "loud"
			c.UploadSessionTTL = 0
		}, []string{"listen", "baseURL", "trustedProxies", "logFormat", "logLevel", "uploadSessionTTL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want errors about %q", tt.want)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s+":") {
					t.Errorf("error %q does not report %q", err, s)
				}
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tt.want) {
				t.Errorf("error reports %d problems, want %d: %q", got, len(tt.want), err)
			}
		})
	}
}

func TestPrefixes(t *testing.T) {
	c := config.Default()
	c.TrustedProxies = []string{"10.1.2.3/8", "::1/128"}
	got := c.Prefixes()
	if len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "::1/128" {
		t.Errorf("Prefixes = %v, want masked [10.0.0.0/8 ::1/128]", got)
	}
}
