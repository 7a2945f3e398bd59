// Package oci turns a container image archive into an flist: the output
// of `docker save` (or `podman save`), or an OCI image layout, as a
// directory or a tar file (possibly gzip-compressed as a whole).
//
// Convert reads the archive without extracting anything to disk: it checks
// every blob against its digest (and every layer against the image
// configuration's diff_ids), applies the layers in order to a tree held in
// memory — whiteouts (.wh.NAME) delete what lower layers had, opaque
// directories (.wh..wh..opq) hide it all, hard links become copies, parent
// directories that are symlinks are followed as in a chroot, so no entry of
// the archive can name anything outside the image's root — and cuts file
// contents into flist blocks (flist.Cutter), so content shared between
// layers or images is stored and uploaded once. The image configuration's
// entrypoint, cmd, env, working directory and user become the flist's
// Image.
//
// What an flist cannot carry is dropped, and said so in Result.Notes:
// owners and groups, setuid/setgid/sticky bits, extended attributes, device
// nodes, FIFOs and sockets. Absolute symlink targets (common in images) are
// rewritten relative to the link, which gives the same file in the image's
// root; a symlink that loops is dropped.
//
// Package oci/ocitest writes archives for tests.
package oci
