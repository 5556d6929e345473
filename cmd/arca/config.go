package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"arca/internal/config"
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
// the environment, then the flags that were given.
func loadConfig(fs *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	file, _ := fs.GetString("config")
	if file == "" {
		file = os.Getenv("ARCA_CONFIG")
	}
	if file != "" {
		if err := cfg.LoadFile(file); err != nil {
			return cfg, err
		}
	}
	if err := cfg.LoadEnv(os.Environ()); err != nil {
		return cfg, err
	}
	for name, field := range map[string]*string{
		"data": &cfg.Data, "listen": &cfg.Listen, "base-url": &cfg.BaseURL, "log-format": &cfg.LogFormat,
	} {
		if fs.Changed(name) {
			v, _ := fs.GetString(name)
			*field = v
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration (file, environment and flags) and print the result",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			cfg.AdminPassword = redact(cfg.AdminPassword)
			out, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	registerConfigFlags(check.Flags())
	cmd.AddCommand(check)
	return cmd
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "(set)"
}
