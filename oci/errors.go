package oci

import "errors"

// Sentinel errors; errors returned by this package wrap at most one of them.
var (
	// ErrInvalidArchive: the archive is not a readable image archive, or
	// lacks a file or blob it refers to, or holds malformed JSON or tar
	// data.
	ErrInvalidArchive = errors.New("invalid image archive")
	// ErrDigestMismatch: a blob or layer does not have the digest (or
	// size) the archive says it has.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsafePath: a layer names a path outside the image's root (a
	// ".." leading above it), directly or as a hard link's target.
	ErrUnsafePath = errors.New("path outside the image")
	// ErrUnsupported: the archive uses something this package does not
	// read (zstd compression, a digest algorithm other than SHA-256, a
	// non-Linux image).
	ErrUnsupported = errors.New("unsupported image")
	// ErrNoImage: the archive holds no image matching Options.Image and
	// Options.Platform, or several (the error names them).
	ErrNoImage = errors.New("no such image in the archive")
)
