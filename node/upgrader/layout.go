package upgrader

import "github.com/grid4/grid4/node/upgrader/generation"

// The upgrade directory is package generation's: these names keep the
// upgrader's API whole.

// layout is the upgrade directory the upgrader writes.
type layout = generation.Dir

// persisted is the content of StateFile.
type persisted = generation.State

type (
	// Manifest describes a generation (generation.Manifest).
	Manifest = generation.Manifest
	// Package is one package of a generation (generation.Package).
	Package = generation.Package
	// Trial is a switch in progress (generation.Trial).
	Trial = generation.Trial
	// Rollback records a release the node did not keep
	// (generation.Rollback).
	Rollback = generation.Rollback
)

// Names in the upgrade directory (see package generation).
const (
	CurrentLink    = generation.CurrentLink
	GenerationsDir = generation.GenerationsDir
	PackagesDir    = generation.PackagesDir
	StateFile      = generation.StateFile
	CacheDir       = generation.CacheDir
	ManifestFile   = generation.ManifestFile
	ZosLink        = generation.ZosLink
	PackageLinks   = generation.PackageLinks
	ZosBinary      = generation.ZosBinary
	ManifestFormat = generation.ManifestFormat
	StateFormat    = generation.StateFormat
	// PhaseSwitching and PhaseRollingBack are the phases of a Trial.
	PhaseSwitching   = generation.PhaseSwitching
	PhaseRollingBack = generation.PhaseRollingBack
)
