// Package hub is the grid4 hub: an HTTP server of flists (package flist),
// their blocks, tags (releases: ordered sets of flists signed by their
// publisher) and tag links (names pointing at tags). Its Go client is
// package hub/client and its JSON documents are package hub/api, apart from
// the server so that a node or a CLI fetching flists links neither the
// server nor its metrics.
//
// Anyone may read. Publishing (blocks, flists, tags, links) takes signed
// requests v2 (package auth) from a configured publisher key, and each
// publisher writes only its own repositories, <publisher>/<repo>. Blocks
// are checked against their IDs on upload and served with HTTP range
// support so interrupted downloads resume. Tags carry the publisher's
// signature over the tag document, which nodes check with the publisher's
// key: the hub cannot change a release it serves. Settings, routes and a
// publishing walkthrough are in docs/hub.md.
package hub
