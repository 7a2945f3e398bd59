package contd

import (
	"testing"

	"github.com/grid4/grid4/node/internal/bustest"
)

// docs/contd.md lists exactly the methods the bus object serves.
func TestDocListsTheMethods(t *testing.T) {
	bustest.DocListsMethods(t, "../../docs/contd.md", Object, (&Service{}).Methods())
}
