// Command g4init is process 1 of grid4's virtual machines: vmd puts it in
// each machine's initramfs as /init (see package node/vmd/guest). It must
// be built static (CGO_ENABLED=0; make build does).
package main

import (
	"os"

	"github.com/grid4/grid4/node/vmd/guest"
)

func main() { os.Exit(guest.Main()) }
