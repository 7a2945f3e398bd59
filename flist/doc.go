// Package flist is the grid4 package format: an flist describes a tree of
// directories, regular files and symbolic links, and stores the files'
// content as content-addressed, compressed blocks, so identical blocks are
// stored and transferred once however many files or packages share them.
//
// An flist is a canonical JSON document (Encode, Parse) whose SHA-256 is
// its identity (ID). Build makes one from a directory, handing each new
// block to a BlockSink; Materialize writes one into a new read-only
// directory, atomically, reading blocks from a BlockSource and checking
// every block against its hash. A Tag is a release: a named, ordered list
// of flists, signed by its publisher (SignTag, VerifyTag), so a node can
// check a release without trusting the server it came from.
//
// The exact byte formats (documents, blocks, tags, signatures) are
// specified in docs/flist.md.
package flist
