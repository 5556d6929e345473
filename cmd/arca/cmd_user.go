package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// grant is a user's actions on one repository.
type grant struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

// user is a user as the API shows it.
type user struct {
	Name        string    `json:"name"`
	Admin       bool      `json:"admin"`
	Permissions []grant   `json:"permissions"`
	CreatedAt   time.Time `json:"createdAt"`
}

// userBody is what create and update send.
type userBody struct {
	Name        string  `json:"name"`
	Password    string  `json:"password,omitempty"`
	Admin       bool    `json:"admin"`
	Permissions []grant `json:"permissions"`
}

func userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users and their permissions on a running server",
		Long: `Manage users through the REST API of a running server (admin only).

The server is --url (or ARCA_URL, default ` + defaultServerURL + `); authenticate with
--token (or ARCA_TOKEN), or --user and --password (or ARCA_USER, ARCA_PASSWORD).
On "user create" and "user update", --password is the password of the user being
written; the caller's password then comes from ARCA_PASSWORD or --user NAME:PASSWORD.`,
	}
	conn := addConnectionFlags(cmd)
	cmd.AddCommand(userListCommand(conn), userCreateCommand(conn), userUpdateCommand(conn),
		userDeleteCommand(conn))
	return cmd
}

func userListCommand(conn *connection) *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users with their permissions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			items, err := a.list("/api/v1/users", pageSize)
			if err != nil {
				return err
			}
			if a.json {
				return a.printItems(items)
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tADMIN\tPERMISSIONS\tCREATED")
			for _, raw := range items {
				var u user
				if err := json.Unmarshal(raw, &u); err != nil {
					return fmt.Errorf("unexpected user in the list: %w", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, yesNo(u.Admin), formatGrants(u.Permissions),
					formatTime(&u.CreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&pageSize, "page-size", defaultPageSize, "users fetched per request (1-1000)")
	return cmd
}

// userFlags are the flags create and update share.
type userFlags struct {
	password      string
	passwordStdin bool
	admin         bool
	permissions   []string
}

func (f *userFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.password, "password", "", "the user's password (at least 8 characters)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the user's password from standard input")
	adminHelp := "make the user an admin of the whole server"
	permHelp := "REPOSITORY:ACTION[,ACTION...] with actions read, write, delete, admin (repeatable)"
	if update {
		adminHelp = "make the user an admin, or not (true or false)"
		permHelp += "; replaces the actions on that repository and keeps the others"
	}
	fs.BoolVar(&f.admin, "admin", false, adminHelp)
	fs.StringArrayVar(&f.permissions, "permission", nil, permHelp)
}

// newPassword returns the password the flags give, "" for none.
func (f *userFlags) newPassword(cmd *cobra.Command) (string, error) {
	if !f.passwordStdin {
		return f.password, nil
	}
	if f.password != "" {
		return "", fmt.Errorf("give --password or --password-stdin, not both")
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("standard input holds no password")
	}
	return line, nil
}

// parsePermissions reads REPOSITORY:ACTIONS flags into grants, in the order
// given, merging repeated repositories.
func parsePermissions(flags []string) ([]grant, error) {
	var out []grant
	index := map[string]int{}
	for _, f := range flags {
		repoName, actions, ok := strings.Cut(f, ":")
		repoName = strings.TrimSpace(repoName)
		if !ok || repoName == "" || strings.TrimSpace(actions) == "" {
			return nil, fmt.Errorf("--permission %q: want REPOSITORY:ACTION[,ACTION...], e.g. files:read,write", f)
		}
		i, seen := index[repoName]
		if !seen {
			i = len(out)
			index[repoName] = i
			out = append(out, grant{Repository: repoName})
		}
		for _, act := range strings.Split(actions, ",") {
			act = strings.TrimSpace(act)
			if act == "" {
				return nil, fmt.Errorf("--permission %q: empty action", f)
			}
			if !contains(out[i].Actions, act) {
				out[i].Actions = append(out[i].Actions, act)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func userCreateCommand(conn *connection) *cobra.Command {
	var f userFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user",
		Example: `  arca user create ci --password "$CI_PASSWORD" --permission files:read,write
  echo "$PW" | arca user create alice --password-stdin --permission files:read --permission docs:read,write,delete`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			pw, err := f.newPassword(cmd)
			if err != nil {
				return err
			}
			if pw == "" {
				return fmt.Errorf("a new user needs --password or --password-stdin")
			}
			grants, err := parsePermissions(f.permissions)
			if err != nil {
				return err
			}
			if grants == nil {
				grants = []grant{}
			}
			body := userBody{Name: args[0], Password: pw, Admin: f.admin, Permissions: grants}
			data, _, err := a.do("POST", "/api/v1/users", body)
			if err != nil {
				return err
			}
			return printUser(a, data)
		},
	}
	f.register(cmd, false)
	return cmd
}

func userUpdateCommand(conn *connection) *cobra.Command {
	var f userFlags
	var remove []string
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a user's password, admin flag or permissions, keeping the rest",
		Long: `Change a user: it reads the user, changes what the flags name and writes it back.
--permission replaces the actions on the repositories it names; permissions on other
repositories stay. --remove-permission drops a repository's permission. The password
changes only with --password or --password-stdin.`,
		Example: `  arca user update ci --permission files:read,write,delete
  arca user update ci --remove-permission old-files --admin=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("password") && !fs.Changed("password-stdin") && !fs.Changed("admin") &&
				!fs.Changed("permission") && !fs.Changed("remove-permission") {
				return fmt.Errorf("nothing to change: give --password, --password-stdin, --admin, --permission or --remove-permission")
			}
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			pw, err := f.newPassword(cmd)
			if err != nil {
				return err
			}
			grants, err := parsePermissions(f.permissions)
			if err != nil {
				return err
			}
			path := "/api/v1/users/" + pathName(args[0])
			var cur user
			if _, err := a.getJSON(path, &cur); err != nil {
				return err
			}
			body := userBody{Name: cur.Name, Password: pw, Admin: cur.Admin, Permissions: []grant{}}
			if fs.Changed("admin") {
				body.Admin = f.admin
			}
			replaced := map[string]bool{}
			for _, g := range grants {
				replaced[g.Repository] = true
			}
			for _, r := range remove {
				if replaced[r] {
					return fmt.Errorf("repository %s is both in --permission and --remove-permission", r)
				}
			}
			found := map[string]bool{}
			for _, g := range cur.Permissions {
				found[g.Repository] = true
				if !replaced[g.Repository] && !contains(remove, g.Repository) {
					body.Permissions = append(body.Permissions, g)
				}
			}
			for _, r := range remove {
				if !found[r] {
					return fmt.Errorf("user %s has no permission on %s to remove", cur.Name, r)
				}
			}
			body.Permissions = append(body.Permissions, grants...)
			data, _, err := a.do("PUT", path, body)
			if err != nil {
				return err
			}
			return printUser(a, data)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringArrayVar(&remove, "remove-permission", nil, "REPOSITORY whose permission to drop (repeatable)")
	return cmd
}

func userDeleteCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and its tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if _, _, err := a.do("DELETE", "/api/v1/users/"+pathName(args[0]), nil); err != nil {
				return err
			}
			if a.json {
				return a.printJSONValue(map[string]string{"deleted": args[0]})
			}
			_, err = fmt.Fprintf(a.out, "user %s deleted\n", args[0])
			return err
		},
	}
}

// printUser prints one user.
func printUser(a *apiClient, data []byte) error {
	if a.json {
		return a.printJSON(data)
	}
	var u user
	if err := json.Unmarshal(data, &u); err != nil {
		return fmt.Errorf("unexpected user: %w", err)
	}
	return a.printFields([][2]string{
		{"NAME", u.Name}, {"ADMIN", yesNo(u.Admin)}, {"PERMISSIONS", formatGrants(u.Permissions)},
		{"CREATED", formatTime(&u.CreatedAt)},
	})
}

// formatGrants writes grants the way --permission takes them.
func formatGrants(grants []grant) string {
	if len(grants) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(grants))
	for _, g := range grants {
		parts = append(parts, g.Repository+":"+strings.Join(g.Actions, ","))
	}
	return strings.Join(parts, " ")
}

// formatTime writes a time for a table; nil or zero is "-".
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}
