package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// token is an API token as the server shows it; Token (the secret) is set
// only in the answer to its creation.
type token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Token      string     `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

func tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage your API tokens on a running server",
		Long: `Manage the API tokens of the user you authenticate as. A token acts for its user,
with that user's permissions: send it as "Authorization: Bearer TOKEN", or as the
basic-auth password with the user name __token__ or your own name.

The server is --url (or ARCA_URL, default ` + defaultServerURL + `); authenticate with
--token (or ARCA_TOKEN), or --user and --password (or ARCA_USER, ARCA_PASSWORD).`,
	}
	conn := addConnectionFlags(cmd)
	cmd.AddCommand(tokenCreateCommand(conn), tokenListCommand(conn), tokenRevokeCommand(conn))
	return cmd
}

func tokenCreateCommand(conn *connection) *cobra.Command {
	var name string
	var expiresIn time.Duration
	cmd := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Create a token; its secret is shown only this once",
		Example: `  arca token create --name ci --expires-in 720h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return fmt.Errorf("--name is required: say what the token is for")
			}
			if expiresIn < 0 {
				return fmt.Errorf("--expires-in must not be negative")
			}
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]string{"name": name}
			if expiresIn > 0 {
				body["expiresIn"] = expiresIn.String()
			}
			data, _, err := a.do("POST", "/api/v1/tokens", body)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(data)
			}
			var t token
			if err := json.Unmarshal(data, &t); err != nil {
				return fmt.Errorf("unexpected token: %w", err)
			}
			if err := a.printFields([][2]string{
				{"ID", t.ID}, {"NAME", t.Name}, {"EXPIRES", expiry(t.ExpiresAt)}, {"TOKEN", t.Token},
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.out, "\nThis token is shown only once: store it now. Revoke it with: arca token revoke "+t.ID)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the token is for (required)")
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime such as 720h (default: never expires)")
	return cmd
}

func tokenListCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your tokens (without their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			items, err := a.list("/api/v1/tokens", 0)
			if err != nil {
				return err
			}
			if a.json {
				return a.printItems(items)
			}
			tw := a.table()
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES\tLAST USED")
			for _, raw := range items {
				var t token
				if err := json.Unmarshal(raw, &t); err != nil {
					return fmt.Errorf("unexpected token in the list: %w", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, formatTime(&t.CreatedAt),
					expiry(t.ExpiresAt), formatTime(t.LastUsedAt))
			}
			return tw.Flush()
		},
	}
}

func tokenRevokeCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your tokens; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if _, _, err := a.do("DELETE", "/api/v1/tokens/"+pathName(args[0]), nil); err != nil {
				return err
			}
			if a.json {
				return a.printJSONValue(map[string]string{"revoked": args[0]})
			}
			_, err = fmt.Fprintf(a.out, "token %s revoked\n", args[0])
			return err
		},
	}
}

// expiry writes when a token expires.
func expiry(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	s := formatTime(t)
	if time.Now().After(*t) {
		s += " (expired)"
	}
	return s
}
