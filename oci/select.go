package oci

import (
	"fmt"
	"slices"
	"strings"
)

// Archive formats, as Result.Format names them.
const (
	FormatDockerSave = "docker-save"
	FormatOCILayout  = "oci-layout"
)

// DefaultPlatform is the platform chosen from a multi-platform image when
// Options.Platform is empty: what grid nodes run.
const DefaultPlatform = "linux/amd64"

// maxLayers bounds an image's layers (overlayfs stacks at most 128 lower
// directories; Docker refuses images of more than 127 layers).
const maxLayers = 1000

// blobRef is a file of the archive and what it must hash to.
type blobRef struct {
	name   string
	digest *digest // nil: not known (a docker-save layer: its diff_id checks it)
	size   int64   // -1: not known
}

// image is the chosen image of an archive.
type image struct {
	format string
	name   string
	config blobRef
	layers []blobRef
}

// Media types of the documents an OCI layout refers to.
const (
	mtOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mtDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mtDockerV2      = "application/vnd.docker.distribution.manifest.v2+json"
	mtOCIConfig     = "application/vnd.oci.image.config.v1+json"
	mtDockerConfig  = "application/vnd.docker.container.image.v1+json"
	annotationRef   = "org.opencontainers.image.ref.name"
	annotationCtrdN = "io.containerd.image.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform"`
	Annotations map[string]string `json:"annotations"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// index is an OCI image index (index.json) or a Docker manifest list; a
// manifest is an image manifest. They are told apart by their members as
// much as by mediaType, which is optional.
type indexOrManifest struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
}

// dockerManifest is one image of a docker-save manifest.json.
type dockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// selectImage finds the image opts asks for.
func selectImage(a files, opts Options) (*image, error) {
	want, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	switch {
	case a.has("manifest.json"):
		return selectDockerSave(a, opts.Image)
	case a.has("index.json"):
		return selectOCI(a, opts.Image, want)
	}
	return nil, fmt.Errorf("%w: neither manifest.json (docker save) nor index.json (OCI image layout) found", ErrInvalidArchive)
}

func parsePlatform(s string) (platform, error) {
	if s == "" {
		s = DefaultPlatform
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64", s)
	}
	p := platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func selectDockerSave(a files, name string) (*image, error) {
	var list []dockerManifest
	if err := readJSON(a, "manifest.json", "manifest.json", nil, -1, &list); err != nil {
		return nil, err
	}
	var match []dockerManifest
	var names []string
	for _, m := range list {
		names = append(names, strings.Join(m.RepoTags, ","))
		if name == "" || slices.ContainsFunc(m.RepoTags, func(t string) bool { return sameRef(t, name) }) {
			match = append(match, m)
		}
	}
	if err := oneOf(len(match), len(list), name, names, ""); err != nil {
		return nil, err
	}
	m := match[0]
	img := &image{format: FormatDockerSave, config: blobRef{name: m.Config, size: -1}}
	if len(m.RepoTags) > 0 {
		img.name = m.RepoTags[0]
	}
	// Docker names the configuration by its digest (<hex>.json, or
	// blobs/sha256/<hex> since Docker 25): check it when it is. The
	// configuration's diff_ids then check the layers.
	img.config.digest = digestInName(m.Config)
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("%w: %d layers, limit %d", ErrUnsupported, len(m.Layers), maxLayers)
	}
	for _, l := range m.Layers {
		img.layers = append(img.layers, blobRef{name: l, digest: digestInName(l), size: -1})
	}
	return img, nil
}

// digestInName returns the digest a docker-save file name carries:
// blobs/sha256/<hex> or <hex>.json.
func digestInName(name string) *digest {
	h, ok := strings.CutPrefix(cleanName(name), "blobs/sha256/")
	if !ok {
		h, ok = strings.CutSuffix(cleanName(name), ".json")
	}
	if !ok {
		return nil
	}
	d, err := parseDigest("sha256:" + h)
	if err != nil {
		return nil
	}
	return &d
}

// oneOf explains why a selection did not end with exactly one image.
func oneOf(n, all int, name string, names []string, plat string) error {
	switch {
	case n == 1:
		return nil
	case all == 0:
		return fmt.Errorf("%w: the archive holds no image", ErrNoImage)
	case n == 0 && name != "":
		return fmt.Errorf("%w: no image %s%s (the archive holds: %s)", ErrNoImage, name, plat, listNames(names))
	case n == 0:
		return fmt.Errorf("%w: no image%s (the archive holds: %s)", ErrNoImage, plat, listNames(names))
	}
	return fmt.Errorf("%w: the archive holds %d images (%s): choose one by name", ErrNoImage, n, listNames(names))
}

func listNames(names []string) string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" {
			n = "<unnamed>"
		}
		out = append(out, n)
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return strings.Join(out, ", ")
}

// sameRef reports whether two image references name the same image, with
// Docker's defaults: the tag latest, the registry docker.io and the
// namespace library.
func sameRef(a, b string) bool { return normalRef(a) == normalRef(b) }

func normalRef(r string) string {
	if r == "" {
		return ""
	}
	name, rest := r, ""
	if i := strings.IndexAny(r, "@"); i >= 0 {
		name, rest = r[:i], r[i:]
	}
	if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") {
		if rest == "" {
			name += ":latest"
		}
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + rest
}

// candidate is an image manifest of an OCI layout, with its names and
// platform.
type candidate struct {
	desc     descriptor
	names    []string
	platform *platform
}

func selectOCI(a files, name string, want platform) (*image, error) {
	var idx indexOrManifest
	if err := readJSON(a, "index.json", "index.json", nil, -1, &idx); err != nil {
		return nil, err
	}
	var all []candidate
	for _, d := range idx.Manifests {
		var names []string
		for _, k := range []string{annotationCtrdN, annotationRef} {
			if v := d.Annotations[k]; v != "" {
				names = append(names, v)
			}
		}
		found, err := manifests(a, d, names, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, found...)
	}
	var byName, match []candidate
	var names []string
	for _, c := range all {
		if name == "" || slices.ContainsFunc(c.names, func(n string) bool { return n == name || sameRef(n, name) }) {
			byName = append(byName, c)
		}
	}
	for _, c := range byName {
		if c.platform == nil || platformMatches(*c.platform, want) {
			match = append(match, c)
		}
		label := strings.Join(c.names, ",")
		if c.platform != nil {
			label += " (" + c.platform.String() + ")"
		}
		names = append(names, label)
	}
	if len(match) == 0 && len(byName) > 0 {
		return nil, oneOf(0, len(all), name, names, " for "+want.String())
	}
	if err := oneOf(len(match), len(all), name, names, ""); err != nil {
		return nil, err
	}
	c := match[0]
	md, err := parseDigest(c.desc.Digest)
	if err != nil {
		return nil, err
	}
	var m indexOrManifest
	if err := readJSON(a, md.blobPath(), "manifest "+md.String(), &md, c.desc.Size, &m); err != nil {
		return nil, err
	}
	if m.Config == nil {
		return nil, fmt.Errorf("%w: manifest %s has no config", ErrInvalidArchive, md)
	}
	if mt := m.Config.MediaType; mt != mtOCIConfig && mt != mtDockerConfig {
		return nil, fmt.Errorf("%w: manifest %s is not a container image (its config is %q)", ErrUnsupported, md, trunc(mt))
	}
	img := &image{format: FormatOCILayout}
	if len(c.names) > 0 {
		img.name = c.names[0]
	}
	if img.config, err = ociBlob(*m.Config); err != nil {
		return nil, err
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("%w: %d layers, limit %d", ErrUnsupported, len(m.Layers), maxLayers)
	}
	for _, l := range m.Layers {
		if strings.Contains(l.MediaType, "zstd") {
			return nil, fmt.Errorf("%w: layer %s is zstd-compressed (%s); only plain and gzip layers are read", ErrUnsupported, l.Digest, l.MediaType)
		}
		b, err := ociBlob(l)
		if err != nil {
			return nil, err
		}
		img.layers = append(img.layers, b)
	}
	return img, nil
}

// maxIndexDepth bounds indexes nested in indexes.
const maxIndexDepth = 4

// manifests returns the image manifests d leads to: d itself, or those of
// the index it is.
func manifests(a files, d descriptor, names []string, depth int) ([]candidate, error) {
	switch d.MediaType {
	case mtOCIManifest, mtDockerV2:
		return []candidate{{desc: d, names: names, platform: d.Platform}}, nil
	case mtOCIIndex, mtDockerList, "":
	default:
		// Artifacts other than images (signatures, attestations) are
		// not candidates.
		return nil, nil
	}
	if depth >= maxIndexDepth {
		return nil, fmt.Errorf("%w: indexes nested more than %d deep", ErrInvalidArchive, maxIndexDepth)
	}
	dg, err := parseDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	var sub indexOrManifest
	if err := readJSON(a, dg.blobPath(), "index "+dg.String(), &dg, d.Size, &sub); err != nil {
		return nil, err
	}
	if sub.Manifests == nil {
		// A descriptor without mediaType naming a manifest.
		if sub.Config != nil {
			return []candidate{{desc: d, names: names, platform: d.Platform}}, nil
		}
		return nil, nil
	}
	var out []candidate
	for _, m := range sub.Manifests {
		found, err := manifests(a, m, names, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func platformMatches(p, want platform) bool {
	return p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == want.Variant)
}

func ociBlob(d descriptor) (blobRef, error) {
	dg, err := parseDigest(d.Digest)
	if err != nil {
		return blobRef{}, err
	}
	if d.Size < 0 {
		return blobRef{}, fmt.Errorf("%w: blob %s has a negative size", ErrInvalidArchive, dg)
	}
	return blobRef{name: dg.blobPath(), digest: &dg, size: d.Size}, nil
}

// imageConfig is the part of an OCI image configuration this package
// uses.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	Config       struct {
		User       string   `json:"User"`
		Env        []string `json:"Env"`
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// readConfig reads the image's configuration and checks it fits its
// layers and the platform.
func readConfig(a files, img *image, want platform) (*imageConfig, []digest, error) {
	var cfg imageConfig
	what := "image config"
	if img.config.digest != nil {
		what += " " + img.config.digest.String()
	}
	if err := readJSON(a, img.config.name, what, img.config.digest, img.config.size, &cfg); err != nil {
		return nil, nil, err
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, nil, fmt.Errorf("%w: the image is for %s, not linux", ErrUnsupported, cfg.OS)
	}
	got := platform{OS: "linux", Architecture: cfg.Architecture, Variant: cfg.Variant}
	if cfg.Architecture != "" && !platformMatches(got, want) {
		return nil, nil, fmt.Errorf("%w: the image is for %s, not %s (choose the platform %s to convert it anyway)", ErrNoImage, got, want, got)
	}
	if len(cfg.RootFS.DiffIDs) != len(img.layers) {
		return nil, nil, fmt.Errorf("%w: the image config lists %d layers (rootfs.diff_ids), the manifest %d", ErrInvalidArchive, len(cfg.RootFS.DiffIDs), len(img.layers))
	}
	diffs := make([]digest, len(cfg.RootFS.DiffIDs))
	for i, s := range cfg.RootFS.DiffIDs {
		d, err := parseDigest(s)
		if err != nil {
			return nil, nil, fmt.Errorf("diff_ids[%d]: %w", i, err)
		}
		diffs[i] = d
	}
	return &cfg, diffs, nil
}
