package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func pypiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pypi",
		Short: "Yank and delete releases of PyPI repositories on a running server",
		Long: `Yank, unyank and delete releases of PyPI repositories through the REST API of a
running server. A yanked release (PEP 592) stays installable by an exact pin
(name==version) but pip skips it otherwise.

The server is --url (or ARCA_URL, default ` + defaultServerURL + `); authenticate with
--token (or ARCA_TOKEN), or --user and --password (or ARCA_USER, ARCA_PASSWORD).`,
	}
	conn := addConnectionFlags(cmd)
	cmd.AddCommand(pypiYankCommand(conn), pypiUnyankCommand(conn), pypiDeleteCommand(conn))
	return cmd
}

// pypiReleasePath is the REST path of a release.
func pypiReleasePath(args []string) string {
	return "/api/v1/repositories/" + pathName(args[0]) + "/pypi/" + pathName(args[1]) + "/" + pathName(args[2])
}

// pypiDone reports what a command did to a release.
func pypiDone(a *apiClient, args []string, action string, extra map[string]string) error {
	if a.json {
		v := map[string]string{"repository": args[0], "project": args[1], "version": args[2], "action": action}
		for k, x := range extra {
			v[k] = x
		}
		return a.printJSONValue(v)
	}
	_, err := fmt.Fprintf(a.out, "%s %s in %s %s\n", args[1], args[2], args[0], action)
	return err
}

func pypiYankCommand(conn *connection) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "yank REPO PROJECT VERSION",
		Short: "Yank every file of a release",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			var body any
			if reason != "" {
				body = map[string]string{"reason": reason}
			}
			if _, _, err := a.do("POST", pypiReleasePath(args)+"/yank", body); err != nil {
				return err
			}
			extra := map[string]string{}
			if reason != "" {
				extra["reason"] = reason
			}
			return pypiDone(a, args, "yanked", extra)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown by pip when it installs the release")
	return cmd
}

func pypiUnyankCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "unyank REPO PROJECT VERSION",
		Short: "Take back the yank of a release",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if _, _, err := a.do("DELETE", pypiReleasePath(args)+"/yank", nil); err != nil {
				return err
			}
			return pypiDone(a, args, "unyanked", nil)
		},
	}
}

func pypiDeleteCommand(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "delete REPO PROJECT VERSION",
		Short: "Delete every file of a release",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if _, _, err := a.do("DELETE", pypiReleasePath(args), nil); err != nil {
				return err
			}
			return pypiDone(a, args, "deleted", nil)
		},
	}
}
