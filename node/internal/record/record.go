// Package record reads and writes the records of workloads that contd and vmd keep,
// one directory per workload holding the spec it was started with
// (spec.json, whose "id" is the workload's ID).
package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/grid4/grid4/internal/atomicfile"
)

// specName is the file of a record's spec, in the workload's directory.
const specName = "spec.json"

// File is the spec file of the record in dir, the workload's directory.
func File(dir string) string { return filepath.Join(dir, specName) }

// Read returns the spec of the record in dir: an error matching
// fs.ErrNotExist when there is none, one naming the file when it is not
// the JSON of an S.
func Read[S any](dir string) (S, error) {
	var sp S
	b, err := os.ReadFile(File(dir))
	if err != nil {
		return sp, err
	}
	if err := json.Unmarshal(b, &sp); err != nil {
		return sp, fmt.Errorf("%s: %w", File(dir), err)
	}
	return sp, nil
}

// Holds says whether the record in dir holds spec, byte for byte (the
// workload runs with the Spec that was marshalled to spec).
func Holds(dir string, spec []byte) bool {
	have, err := os.ReadFile(File(dir))
	return err == nil && bytes.Equal(have, spec)
}

// Write makes dir and writes spec (a Spec's JSON, whose "id" is the
// workload's) as its record, atomically: before anything of the workload
// is made, so that IDs finds whatever a crash leaves half made.
func Write(dir string, spec []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(File(dir), spec, 0o600)
}

// IDs lists the workload IDs of the records under dir (dir/*/spec.json),
// sorted. A record removed meanwhile, or half written by a crash, is
// skipped.
func IDs(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", specName))
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
