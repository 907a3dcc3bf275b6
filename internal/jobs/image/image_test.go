package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// make image's output, read back as a registry client would: the config
// runs the static binary as a non-root user with the CA bundle, carries
// the OCI labels, and the binary taken out of its layer runs.
func TestImageConfigAndContent(t *testing.T) {
	if _, err := os.Stat(CertsPath); err != nil {
		t.Skipf("no CA bundle at %s (apt-get install ca-certificates)", CertsPath)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pitcrew")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v9.9.9-test", "../../../cmd/pitcrew")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img, err := Build(Options{Binary: bin, Version: "v9.9.9-test", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(dir, "layout")
	if err := WriteLayout(lay, img, "pitcrew:v9.9.9-test"); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarball(filepath.Join(dir, "image.tar"), img, "pitcrew:v9.9.9-test"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index: %v %+v", err, m)
	}
	if m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "pitcrew:v9.9.9-test" {
		t.Errorf("ref name: %v", m.Manifests[0].Annotations)
	}
	got, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if strings.Join(c.Entrypoint, " ") != BinaryPath || strings.Join(c.Cmd, " ") != "sync --config "+ConfigPath {
		t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" || strings.HasPrefix(c.User, "0") || c.User == "" {
		t.Errorf("user %q: want the non-root 65532:65532", c.User)
	}
	if c.WorkingDir != WorkDir || cf.OS != "linux" {
		t.Errorf("workdir %q os %q", c.WorkingDir, cf.OS)
	}
	for k, v := range map[string]string{"org.opencontainers.image.title": "pitcrew", "org.opencontainers.image.version": "v9.9.9-test", "org.opencontainers.image.revision": "abc123"} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if !strings.Contains(strings.Join(c.Env, " "), "SSL_CERT_FILE="+CertsPath) {
		t.Errorf("env %v", c.Env)
	}
	// The files.
	files := map[string]*tar.Header{}
	var binary []byte
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files["/"+strings.TrimSuffix(h.Name, "/")] = h
			if "/"+h.Name == BinaryPath {
				binary, _ = io.ReadAll(tr)
			}
		}
		rc.Close()
	}
	if h := files[CertsPath]; h == nil || h.Size < 1000 {
		t.Errorf("no CA bundle at %s", CertsPath)
	}
	if h := files[BinaryPath]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("binary at %s missing or not executable", BinaryPath)
	}
	if h := files[WorkDir]; h == nil || h.Uid != UID {
		t.Errorf("%s must belong to the image's user", WorkDir)
	}
	if h := files["/etc/passwd"]; h == nil {
		t.Error("no /etc/passwd")
	}
	run := filepath.Join(dir, "from-image")
	if err := os.WriteFile(run, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(run, "version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("v9.9.9-test")) {
		t.Errorf("the image's binary: %v %s", err, out)
	}
	// Static: no dynamic loader named in it.
	if bytes.Contains(binary, []byte("ld-linux")) {
		t.Error("the binary is dynamically linked: build it with CGO_ENABLED=0")
	}
	// The same inputs give the same image.
	again, err := Build(Options{Binary: bin, Version: "v9.9.9-test", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs differ: %s %s", d1, d2)
	}
}
