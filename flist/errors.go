package flist

import "errors"

// Sentinel errors; errors returned by this package wrap at most one of them.
var (
	// ErrInvalid: a document, name, path or ID breaks the format's rules.
	ErrInvalid = errors.New("invalid flist data")
	// ErrCorruptBlock: a block's bytes do not decode, or do not hash to
	// the block's ID, or have another size than the flist says.
	ErrCorruptBlock = errors.New("corrupt block")
	// ErrBadSignature: a tag's signature does not verify with the
	// publisher's key.
	ErrBadSignature = errors.New("bad tag signature")
	// ErrUnsupportedFile: Build met something other than a directory,
	// regular file or symbolic link (a device, FIFO or socket).
	ErrUnsupportedFile = errors.New("unsupported file type")
	// ErrExist: Materialize's target already exists.
	ErrExist = errors.New("target already exists")
	// ErrTreeMismatch: VerifyTree found a tree on disk that is not the one
	// its flist describes.
	ErrTreeMismatch = errors.New("tree does not match its flist")
)
