// Package record reads the records of workloads that contd and vmd keep,
// one directory per workload holding the spec it was started with
// (spec.json, whose "id" is the workload's ID).
package record

import (
	"context"
	"encoding/json"
	"errors"
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

// States returns state(id) for every record under dir, in IDs' order,
// skipping the records that state says are gone (an error matching
// notFound: removed meanwhile).
func States[S any](ctx context.Context, dir string, state func(context.Context, string) (S, error), notFound error) ([]S, error) {
	ids, err := IDs(dir)
	if err != nil {
		return nil, err
	}
	out := []S{}
	for _, id := range ids {
		st, err := state(ctx, id)
		if errors.Is(err, notFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
