package flist

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
)

// Block codecs: the first byte of a stored block says how the rest is
// encoded.
const (
	// CodecRaw: the rest is the block's bytes.
	CodecRaw byte = 0
	// CodecDeflate: the rest is a raw DEFLATE stream (RFC 1951, no zlib
	// or gzip framing: the block ID already checks the content).
	CodecDeflate byte = 1
)

// MaxStoredBlockSize bounds a stored (encoded) block. EncodeBlock never
// makes one larger than MaxBlockSize+1 (it stores incompressible data raw);
// the margin lets other encoders' DEFLATE overhead through.
const MaxStoredBlockSize = MaxBlockSize + 4096

// deflaters keeps DEFLATE compressors for reuse: making one allocates and
// clears about a megabyte, more than compressing a small block costs.
var deflaters = sync.Pool{New: func() any {
	// NewWriter only fails for a bad level.
	w, _ := flate.NewWriter(io.Discard, flate.DefaultCompression)
	return w
}}

// EncodeBlock returns the stored form of a block: DEFLATE-compressed when
// that is smaller, raw otherwise. data must be 1 to MaxBlockSize bytes.
func EncodeBlock(data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data)/2 + 64)
	b.WriteByte(CodecDeflate)
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&b)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(data)
	_ = w.Close()
	deflaters.Put(w)
	if b.Len() < len(data)+1 {
		return b.Bytes()
	}
	out := make([]byte, 0, len(data)+1)
	return append(append(out, CodecRaw), data...)
}

// DecodeBlock decodes a stored block and checks it: it must decode, be
// size bytes long (size < 0: any length up to MaxBlockSize) and hash to id.
// It never returns content that fails a check; errors wrap ErrCorruptBlock.
func DecodeBlock(id ID, stored []byte, size int64) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("%w: block %s: empty", ErrCorruptBlock, id)
	}
	if len(stored) > MaxStoredBlockSize {
		return nil, fmt.Errorf("%w: block %s: stored form is %d bytes, limit %d", ErrCorruptBlock, id, len(stored), MaxStoredBlockSize)
	}
	var data []byte
	switch stored[0] {
	case CodecRaw:
		data = stored[1:]
	case CodecDeflate:
		r := flate.NewReader(bytes.NewReader(stored[1:]))
		capHint := size
		if capHint < 0 || capHint > MaxBlockSize {
			capHint = 64 << 10
		}
		buf := bytes.NewBuffer(make([]byte, 0, capHint))
		// One byte beyond the limit tells an oversized block from one
		// of exactly MaxBlockSize bytes.
		if _, err := io.Copy(buf, io.LimitReader(r, MaxBlockSize+1)); err != nil {
			return nil, fmt.Errorf("%w: block %s: %w", ErrCorruptBlock, id, err)
		}
		data = buf.Bytes()
	default:
		return nil, fmt.Errorf("%w: block %s: unknown codec %d", ErrCorruptBlock, id, stored[0])
	}
	switch {
	case len(data) == 0 || len(data) > MaxBlockSize:
		return nil, fmt.Errorf("%w: block %s: %d bytes, want 1 to %d", ErrCorruptBlock, id, len(data), MaxBlockSize)
	case size >= 0 && int64(len(data)) != size:
		return nil, fmt.Errorf("%w: block %s: %d bytes, want %d", ErrCorruptBlock, id, len(data), size)
	}
	if got := ID(sha256.Sum256(data)); got != id {
		return nil, fmt.Errorf("%w: block %s: content hashes to %s", ErrCorruptBlock, id, got)
	}
	return data, nil
}
