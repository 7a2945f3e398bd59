package zmachine

import (
	"context"
	"errors"

	"github.com/grid4/grid4/node/contd"
)

// Containers is contd as the manager uses it: contd.Stub over the bus,
// *contd.Service in process.
type Containers interface {
	Start(ctx context.Context, sp contd.Spec) error
	Stop(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	State(ctx context.Context, id string) (contd.State, error)
	Check(ctx context.Context) error
}

// containers runs machines as containers.
type containers struct{ c Containers }

func (b containers) check(ctx context.Context) error { return b.c.Check(ctx) }

func (b containers) start(ctx context.Context, mc machine) error {
	sp := contd.Spec{
		ID: mc.ID, Root: mc.Root, Args: mc.Args, Env: mc.Env, WorkingDir: mc.WorkingDir,
		CPU: mc.CPU, Memory: mc.Memory, Log: mc.Console,
	}
	for _, m := range mc.Mounts {
		sp.Mounts = append(sp.Mounts, contd.Mount{Source: m.Source, Target: m.Target})
	}
	for _, n := range mc.NICs {
		switch {
		case n.Parent != "":
			sp.Public = &contd.Public{Parent: n.Parent, IP: n.IP, Gateway: n.Gateway, MAC: n.MAC}
		case sp.Network == nil:
			sp.Network = &contd.Network{Bridge: n.Bridge, IP: n.IP, Gateway: n.Gateway, MAC: n.MAC}
		default:
			return errors.New("a container has one private network interface (beside a public address); this machine asks for more")
		}
	}
	if len(mc.SSHKeys) > 0 {
		// There is no sshd to give them to: the image brings its own and
		// reads SSH_KEY from its environment, as on Grid 3.
		_ = mc.SSHKeys
	}
	return b.c.Start(ctx, sp)
}

func (b containers) stop(ctx context.Context, id string) error {
	if err := b.c.Stop(ctx, id); err != nil && !errors.Is(err, contd.ErrNotFound) {
		return err
	}
	return nil
}

func (b containers) pause(ctx context.Context, id string) error  { return b.c.Pause(ctx, id) }
func (b containers) resume(ctx context.Context, id string) error { return b.c.Resume(ctx, id) }

func (b containers) running(ctx context.Context, id string) (bool, string, error) {
	st, err := b.c.State(ctx, id)
	if err != nil {
		return false, "", err
	}
	switch st.Status {
	case contd.Running, contd.Paused:
		return true, "", nil
	}
	why := "the container is " + string(st.Status)
	if st.OOMKilled {
		why += " (killed for going over its memory limit)"
	}
	return false, why, nil
}
