package vmd

import (
	"testing"

	"github.com/grid4/grid4/node/internal/bustest"
)

// docs/vmd.md lists exactly the methods the bus object serves.
func TestDocListsTheMethods(t *testing.T) {
	bustest.DocListsMethods(t, "../../docs/vmd.md", Object, (&Service{}).Methods())
}
