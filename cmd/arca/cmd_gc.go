package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// gcReport is what a garbage collection run answers.
type gcReport struct {
	DryRun     bool     `json:"dryRun"`
	BlobsFreed int      `json:"blobsFreed"`
	BytesFreed int64    `json:"bytesFreed"`
	Blobs      []string `json:"blobs"`
	Manifests  []string `json:"manifests"`
	Assets     []string `json:"assets"`
}

func gcCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Free the blobs no repository uses any more (admin only)",
		Long: `Run garbage collection on a running server: it removes the stored blobs that no
repository uses any more and that are older than the server's grace period.
It first applies the repositories' cleanup settings: OCI gcUntagged and Maven
snapshotRetention.
--dry-run lists them without removing anything.

The server is --url (or ARCA_URL, default ` + defaultServerURL + `); authenticate with
--token (or ARCA_TOKEN), or --user and --password (or ARCA_USER, ARCA_PASSWORD).`,
		Args: cobra.NoArgs,
	}
	conn := addConnectionFlags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be freed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		a, err := conn.client(cmd)
		if err != nil {
			return err
		}
		data, _, err := a.do("POST", "/api/v1/gc", map[string]bool{"dryRun": dryRun})
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(data)
		}
		var r gcReport
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("unexpected garbage collection report: %w", err)
		}
		verb := "freed"
		if r.DryRun {
			verb = "would be freed (dry run)"
		}
		noun := "blobs"
		if r.BlobsFreed == 1 {
			noun = "blob"
		}
		fmt.Fprintf(a.out, "%d %s %s, %s (%d bytes)\n", r.BlobsFreed, noun, verb, humanBytes(r.BytesFreed), r.BytesFreed)
		deleted := "deleted"
		if r.DryRun {
			deleted = "would be deleted (dry run)"
		}
		if len(r.Manifests) > 0 {
			fmt.Fprintf(a.out, "%d untagged OCI manifests %s\n", len(r.Manifests), deleted)
		}
		if len(r.Assets) > 0 {
			fmt.Fprintf(a.out, "%d files %s by cleanup settings\n", len(r.Assets), deleted)
			for _, p := range r.Assets {
				fmt.Fprintln(a.out, "  "+p)
			}
		}
		if len(r.Blobs) == 0 {
			return nil
		}
		fmt.Fprintln(a.out, "\nSHA256")
		for _, b := range r.Blobs {
			fmt.Fprintln(a.out, b)
		}
		return nil
	}
	return cmd
}
