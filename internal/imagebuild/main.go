// Command image builds the manager's container image without Docker or a
// registry: one layer on an empty base, holding what the Dockerfile's
// distroless/static:nonroot base and build stage put there (the static
// manager at /manager, CA certificates, /etc/passwd with the nonroot user,
// /tmp), and the Dockerfile's config (USER 65532:65532, ENTRYPOINT
// ["/manager"]). It writes an OCI image layout and a tarball that
// `docker load` or `crane push` accept.
//
//	go run ./internal/imagebuild --binary bin/image/manager --ref xdrive-controller:0.1.0 --out dist/image
//
// `make image` builds the binary and runs this; test/install checks the result.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The non-root user of distroless's :nonroot images, which the Dockerfile
// also names.
const (
	uid  = 65532
	user = "65532:65532"
)

type options struct {
	binary, ref, out, caFile, arch string
	version, commit, created       string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "The static linux manager binary. Required.")
	flag.StringVar(&o.ref, "ref", "xdrive-controller:dev", "The image reference the tarball and the layout name.")
	flag.StringVar(&o.out, "out", "dist/image", "Directory for the OCI layout (oci/) and the tarball (image.tar); replaced.")
	flag.StringVar(&o.caFile, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied to the same path in the image (the AWS SDK verifies TLS with it).")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "The binary's architecture.")
	flag.StringVar(&o.version, "version", "dev", "org.opencontainers.image.version label.")
	flag.StringVar(&o.commit, "commit", "unknown", "org.opencontainers.image.revision label.")
	flag.StringVar(&o.created, "created", "", "Creation time (RFC 3339) of the image and its files; default now.")
	flag.Parse()
	if err := build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(o options) error {
	if o.binary == "" {
		return errors.New("--binary is required")
	}
	created := time.Now().UTC().Truncate(time.Second)
	if o.created != "" {
		t, err := time.Parse(time.RFC3339, o.created)
		if err != nil {
			return fmt.Errorf("--created: %w", err)
		}
		created = t.UTC()
	}
	ref, err := name.NewTag(o.ref)
	if err != nil {
		return fmt.Errorf("--ref: %w", err)
	}
	manager, err := os.ReadFile(o.binary)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(o.caFile)
	if err != nil {
		return fmt.Errorf("reading CA certificates (Debian: apt-get install ca-certificates): %w", err)
	}
	rootfs, err := rootFS(created, manager, ca)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("making the layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "internal/imagebuild: /manager, CA certificates, nonroot user", Comment: "xdrive " + o.version,
	}})
	if err != nil {
		return fmt.Errorf("appending the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", o.arch, v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       user,
		Entrypoint: []string{"/manager"},
		WorkingDir: "/",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "xdrive-controller",
			"org.opencontainers.image.source":   "https://github.com/xdrive-io/xdrive",
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.revision": o.commit,
			"org.opencontainers.image.created":  created.Format(time.RFC3339),
		},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return write(o.out, ref, img)
}

// write replaces out with an OCI layout (out/oci) and a tarball (out/image.tar).
func write(out string, ref name.Tag, img v1.Image) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	p, err := layout.Write(filepath.Join(out, "oci"), empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.String(),
	})); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := tarball.WriteToFile(filepath.Join(out, "image.tar"), ref, img); err != nil {
		return fmt.Errorf("writing the tarball: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: %s %s in %s (oci/, image.tar)\n", ref, digest, out)
	return nil
}

// entry is one file (body set) or directory (body nil) of the image.
type entry struct {
	name  string
	mode  int64
	owner int
	body  []byte
}

// rootFS is the layer: every file and directory, with fixed owners and times.
func rootFS(mtime time.Time, manager, ca []byte) ([]byte, error) {
	entries := []entry{
		{name: "etc", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl", mode: 0o755},
		{name: "etc/ssl/certs", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{name: "home", mode: 0o755},
		{name: "home/nonroot", mode: 0o700, owner: uid},
		{name: "tmp", mode: 0o1777},
		{name: "manager", mode: 0o755, body: manager},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: mtime, Format: tar.FormatPAX}
		if e.body == nil {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
