package zmachine

import (
	"context"
	"errors"
)

// Machines is vmd as the manager uses it.
type Machines interface {
	Check(ctx context.Context) error
}

// vms runs machines as virtual machines.
type vms struct{ m Machines }

var errNoVMD = errors.New("virtual machines are not wired yet")

func (b vms) check(ctx context.Context) error                       { return errNoVMD }
func (b vms) start(context.Context, machine) error                  { return errNoVMD }
func (b vms) stop(context.Context, string) error                    { return nil }
func (b vms) pause(context.Context, string) error                   { return errNoVMD }
func (b vms) resume(context.Context, string) error                  { return errNoVMD }
func (b vms) running(context.Context, string) (bool, string, error) { return false, "", errNoVMD }
