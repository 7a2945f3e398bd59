// Package record reads the records of workloads that contd and vmd keep,
// one directory per workload holding the spec it was started with
// (spec.json, whose "id" is the workload's ID).
package record

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// IDs lists the workload IDs of the records under dir (dir/*/spec.json),
// sorted. A record removed meanwhile, or half written by a crash, is
// skipped.
func IDs(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("records in %s: %w", dir, err)
	}
	var ids []string
	for _, f := range files {
		var sp struct {
			ID string `json:"id"`
		}
		b, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(b, &sp) != nil || sp.ID == "" {
			continue
		}
		ids = append(ids, sp.ID)
	}
	slices.Sort(ids)
	return ids, nil
}
