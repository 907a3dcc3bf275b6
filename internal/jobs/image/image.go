// Package image builds pitcrew's OCI image without a container daemon: the
// static binary, CA certificates and a non-root user on an empty base, in
// the way ko builds Go images (go-containerregistry), so `make image` needs
// neither Docker nor root.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image.
const (
	BinaryPath = "/usr/local/bin/pitcrew"
	CertsPath  = "/etc/ssl/certs/ca-certificates.crt"
	ConfigPath = "/etc/pitcrew/pitcrew.yaml"
	WorkDir    = "/var/lib/pitcrew" // data_dir's default ./pitcrew-data lands here
	UID        = 65532              // "nonroot", as distroless names it
)

// Options say what goes into the image.
type Options struct {
	Binary   string // a static pitcrew binary (CGO_ENABLED=0)
	Certs    string // CA bundle; default /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates)
	Version  string
	Revision string
	Arch     string    // default runtime.GOARCH
	Created  time.Time // default the Unix epoch: the same inputs give the same image
}

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	if o.Certs == "" {
		o.Certs = CertsPath
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w (run make build first)", err)
	}
	certs, err := os.ReadFile(o.Certs)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates %s: %w (apt-get install ca-certificates)", o.Certs, err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\npitcrew:x:%d:%d:pitcrew:%s:/sbin/nologin\n", UID, UID, WorkDir)
	group := fmt.Sprintf("root:x:0:\npitcrew:x:%d:\n", UID)
	base, err := layer([]file{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/passwd", body: []byte(passwd), mode: 0o644},
		{name: "etc/group", body: []byte(group), mode: 0o644},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: CertsPath[1:], body: certs, mode: 0o644},
		{name: "etc/pitcrew/", dir: true, mode: 0o755},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "var/", dir: true, mode: 0o755},
		{name: "var/lib/", dir: true, mode: 0o755},
		{name: WorkDir[1:] + "/", dir: true, mode: 0o750, uid: UID},
	})
	if err != nil {
		return nil, err
	}
	app, err := layer([]file{
		{name: "usr/", dir: true, mode: 0o755},
		{name: "usr/local/", dir: true, mode: 0o755},
		{name: "usr/local/bin/", dir: true, mode: 0o755},
		{name: BinaryPath[1:], body: bin, mode: 0o755},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: o.Created.UTC()}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = []string{"sync", "--config", ConfigPath}
	cf.Config.User = fmt.Sprintf("%d:%d", UID, UID)
	cf.Config.WorkingDir = WorkDir
	cf.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CertsPath}
	cf.Config.ExposedPorts = map[string]struct{}{"9307/tcp": {}}
	cf.Config.StopSignal = "SIGTERM"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "pitcrew",
		"org.opencontainers.image.description": "moves a live MySQL/MariaDB database to new infrastructure while it keeps taking writes",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.created":     cf.Created.Format(time.RFC3339),
	}
	return mutate.ConfigFile(img, cf)
}

// WriteLayout writes img as an OCI image layout in dir (crane, skopeo and
// podman read it) with ref as its name.
func WriteLayout(dir string, img v1.Image, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}

// WriteTarball writes img as a tarball `docker load` and `podman load` take.
func WriteTarball(path string, img v1.Image, ref string) error {
	tag, err := nameTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

type file struct {
	name string
	body []byte
	mode int64
	dir  bool
	uid  int
}

// layer makes a gzipped tar layer of files, owned by root unless said.
func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (readCloser, error) { return nopCloser{bytes.NewReader(b)}, nil }, tarball.WithMediaType(types.OCILayer))
}
