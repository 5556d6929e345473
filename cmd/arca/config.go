package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/config"
	"arca/internal/declare"
	"arca/internal/format"
	"arca/internal/meta"
)

// registerConfigFlags adds the flags that override settings.
func registerConfigFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file (env ARCA_CONFIG)")
	fs.String("data", "", "data folder (env ARCA_DATA, default ./arca-data)")
	fs.String("listen", "", "address to listen on (env ARCA_LISTEN, default 127.0.0.1:8080)")
	fs.String("base-url", "", "external URL of the server (env ARCA_BASE_URL)")
	fs.String("log-format", "", "log format, text or json (env ARCA_LOG_FORMAT)")
}

// loadConfig builds the configuration: defaults, then the YAML file, then
// the environment, then the flags that were given. The declarations in the
// file are decoded but not checked: applyDeclarations does that.
func loadConfig(fs *pflag.FlagSet) (config.Config, error) {
	file, err := configFile(fs, nil)
	if err != nil {
		return config.Default(), err
	}
	cfg, problems := buildConfig(fs, file)
	if len(problems) > 0 {
		return cfg, problemsError("invalid configuration", problems)
	}
	return cfg, nil
}

// configFile returns the configuration file: the argument, --config, or
// $ARCA_CONFIG; "" when there is none.
func configFile(fs *pflag.FlagSet, args []string) (string, error) {
	flag, _ := fs.GetString("config")
	if len(args) > 0 {
		if flag != "" && flag != args[0] {
			return "", fmt.Errorf("two configuration files, %s and --config %s: give one", args[0], flag)
		}
		return args[0], nil
	}
	if flag != "" {
		return flag, nil
	}
	return os.Getenv("ARCA_CONFIG"), nil
}

// buildConfig loads the configuration and returns every problem found in
// the file, the environment and the merged settings, one per line.
func buildConfig(fs *pflag.FlagSet, file string) (config.Config, []string) {
	cfg := config.Default()
	var problems []string
	if file != "" {
		problems = append(problems, fileProblems(file, cfg.LoadFile(file))...)
	}
	if err := cfg.LoadEnv(os.Environ()); err != nil {
		problems = append(problems, err.Error())
	}
	for name, field := range map[string]*string{
		"data": &cfg.Data, "listen": &cfg.Listen, "base-url": &cfg.BaseURL, "log-format": &cfg.LogFormat,
	} {
		if fs.Changed(name) {
			v, _ := fs.GetString(name)
			*field = v
		}
	}
	problems = append(problems, flatten(cfg.Validate())...)
	return cfg, problems
}

// fileProblems splits a LoadFile error into one problem per line of the
// file, written "file:line: message".
func fileProblems(file string, err error) []string {
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if _, err := strconv.Atoi(n); err == nil {
					msg = fmt.Sprintf("%s:%s: %s", file, n, after)
				}
			}
		}
		out = append(out, msg)
	}
	return out
}

// flatten lists the errors joined in err, one per entry.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func problemsError(title string, problems []string) error {
	return fmt.Errorf("%s:\n  %s", title, strings.Join(problems, "\n  "))
}

// formatValidators are the format ids with their section validators, as
// declare needs them.
func formatValidators(list []format.Format) declare.Formats {
	out := declare.Formats{}
	for _, f := range list {
		out[f.ID()] = f.ValidateSettings
	}
	return out
}

// applyDeclarations creates or updates the repositories and users the
// configuration file declares.
func applyDeclarations(ctx context.Context, cfg config.Config, db *meta.DB, formats wiredFormats,
	authn *auth.Service, auditLog *audit.Log, log *slog.Logger) error {
	d, err := declare.Parse(cfg.Repositories, cfg.Users, formatValidators(formats.list))
	if err != nil {
		return problemsError("invalid declarations", flatten(err))
	}
	err = d.Apply(ctx, declare.Stores{DB: db, Repos: formats.repos, Auth: authn, Audit: auditLog}, log)
	if err != nil {
		return problemsError("apply declarations", flatten(err))
	}
	return nil
}

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the configuration (file, environment and flags) without starting the server",
		Long: "Validate the configuration without starting the server or opening the database: the\n" +
			"file's syntax and keys, every setting after the environment and flags are merged, and the\n" +
			"declared repositories and users (names, formats, settings, actions, password hashes and\n" +
			"files). The file is FILE, --config or $ARCA_CONFIG. On success it prints \"configuration OK\"\n" +
			"on standard error and the merged configuration, secrets redacted, on standard output;\n" +
			"otherwise every problem, and it exits non-zero.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := configFile(cmd.Flags(), args)
			if err != nil {
				return err
			}
			cfg, problems := buildConfig(cmd.Flags(), file)
			// The formats' validators need no store: the repository
			// service is built without one and never used.
			_, err = declare.Parse(cfg.Repositories, cfg.Users, formatValidators(newFormats(nil, nil, nil).list))
			problems = append(problems, flatten(err)...)
			if len(problems) > 0 {
				what := "the configuration"
				if file != "" {
					what = file
				}
				return problemsError(fmt.Sprintf("%s has %d problem(s)", what, len(problems)), problems)
			}
			out, err := yaml.Marshal(cfg.Redacted())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "configuration OK")
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	registerConfigFlags(check.Flags())
	cmd.AddCommand(check, hashPasswordCommand())
	return cmd
}

// hashPasswordCommand prints the bcrypt hash of a password, for a declared
// user's passwordHash.
func hashPasswordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Print the bcrypt hash of a password read from standard input, for passwordHash",
		Long: "Read a password from the first line of standard input and print its bcrypt hash, the\n" +
			"form a declared user's passwordHash takes:\n\n" +
			"  printf '%s' \"$PASSWORD\" | arca config hash-password",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			password := strings.TrimRight(line, "\r\n")
			if len(password) < 8 || len(password) > 72 {
				return errors.New("a password needs 8 to 72 bytes")
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(hash))
			return err
		},
	}
}
