// Package api holds the hub's wire types: the JSON documents its HTTP API
// (/api/v1) serves and accepts, shared by the hub server (package hub), its
// Go client (package hub/client) and anyone else who speaks to a hub. It
// imports neither of them, so a reader of these documents links no server
// code and no metrics library.
package api

import (
	"time"

	"github.com/grid4/grid4/flist"
)

// PublisherInfo is a publisher as GET /api/v1/publishers lists it.
type PublisherInfo struct {
	// Name owns the repositories <name>/<repo>.
	Name string `json:"name"`
	// ID is the keyid of the publisher's signed requests.
	ID uint64 `json:"id"`
	// PublicKey is the publisher's key, 0x-prefixed hex.
	PublicKey string `json:"public_key"`
	// SS58 is the same key as an SS58 address (prefix 42).
	SS58 string `json:"ss58"`
}

// RepoInfo summarises a repository.
type RepoInfo struct {
	// Publisher and Repo name the repository, Publisher/Repo.
	Publisher string `json:"publisher"`
	Repo      string `json:"repo"`
	// Flists, Tags and Links count what it holds.
	Flists int `json:"flists"`
	Tags   int `json:"tags"`
	Links  int `json:"links"`
}

// FlistInfo is a named flist of a repository.
type FlistInfo struct {
	// Name is the flist's name in the repository.
	Name string `json:"name"`
	// Flist is the flist's ID (SHA-256 of its document).
	Flist flist.ID `json:"flist"`
	// Size is the total length of its files.
	Size int64 `json:"size"`
	// Entries counts its directories, files and symlinks.
	Entries int `json:"entries"`
	// Blocks counts its distinct blocks.
	Blocks int `json:"blocks"`
	// DocumentSize is the length of its document.
	DocumentSize int `json:"document_size"`
	// Updated is when the name was last set.
	Updated time.Time `json:"updated"`
}

// TagEntryInfo is one flist of a tag, as listed.
type TagEntryInfo struct {
	// Name is the package's name in the release.
	Name string `json:"name"`
	// Flist is the package's flist ID.
	Flist flist.ID `json:"flist"`
	// Role is dependency or zos.
	Role flist.Role `json:"role"`
}

// TagInfo describes a tag without its signature.
type TagInfo struct {
	// Tag is the tag's name.
	Tag string `json:"tag"`
	// Hash is the SHA-256 of the signed tag document: the release hash.
	Hash flist.ID `json:"hash"`
	// Created is when the publisher signed it.
	Created time.Time `json:"created"`
	// Published is when the hub accepted it.
	Published time.Time `json:"published,omitzero"`
	// Entries are its flists in installation order.
	Entries []TagEntryInfo `json:"entries"`
}

// LinkInfo is a tag link: a name pointing at a tag of the same repository.
type LinkInfo struct {
	// Link is the link's name.
	Link string `json:"link"`
	// Tag is the tag it points at.
	Tag string `json:"tag"`
	// Updated is when it was last set.
	Updated time.Time `json:"updated"`
}

// RepoListing is everything a repository holds.
type RepoListing struct {
	// Publisher and Repo name the repository.
	Publisher string `json:"publisher"`
	Repo      string `json:"repo"`
	// Flists are its named flists, by name.
	Flists []FlistInfo `json:"flists"`
	// Tags are its tags, the most recently published first.
	Tags []TagInfo `json:"tags"`
	// Links are its links, by name.
	Links []LinkInfo `json:"links"`
}

// MissingRequest asks which blocks the hub does not have
// (POST /api/v1/blocks/missing).
type MissingRequest struct {
	// Blocks are the IDs asked about.
	Blocks []flist.ID `json:"blocks"`
}

// MissingResponse lists the blocks of a MissingRequest the hub does not
// have, in the order asked, each once.
type MissingResponse struct {
	// Missing are the IDs the hub lacks.
	Missing []flist.ID `json:"missing"`
}

// LinkRequest is the body of PUT .../links/{link}.
type LinkRequest struct {
	// Tag is the tag the link is to point at.
	Tag string `json:"tag"`
}
