// Package upgrade is the node's upgrader: it follows the ZOS version the
// registrar approves and installs it from a hub, atomically, with a
// health-checked switch and an automatic rollback (docs/upgrade.md).
//
// The upgrader polls the registrar every Interval (60 minutes) plus a
// random jitter (up to 10 minutes). When the approved version differs from
// the running one and the node may take it — the record is safe to upgrade,
// or the node's farm is one of its test farms — it resolves the version to
// a tag of the configured hub repository, verifies the tag's signature with
// the publisher key the node is configured with, and installs the release:
//
//   - every package (flist) is materialised once, by flist id, into
//     Dir/packages/<flist id>, a read-only tree whose every block was
//     checked against its hash; a package the node already has is reused
//     as it is, not downloaded again;
//   - a new generation Dir/generations/<n> names the release's packages
//     (pkg/<name> symlinks, dependencies first, the zos package last, and
//     zos pointing at the zos package) and records the release in its
//     manifest.json; it is built in a temporary directory and renamed
//     into place, so it exists complete or not at all;
//   - the zos package's bin/zosd must run (`zosd version`) before
//     anything changes;
//   - the switch is one rename(2) of a symbolic link Dir/current, after
//     which the modules are restarted (they run Dir/current/zos/bin/zosd);
//   - the new generation must then come up healthy within HealthDeadline,
//     or the upgrader switches back to the previous generation, restarts
//     the modules again, and remembers the release as rolled back: it is
//     not tried again until the registrar's version record changes (its
//     serial).
//
// Every step is written down before it is taken (Dir/state.json, replaced
// atomically), so an upgrader killed at any point finds, when it starts
// again, exactly the old or the new generation running, cleans what the
// interrupted attempt left, and finishes or undoes the switch.
package upgrader
