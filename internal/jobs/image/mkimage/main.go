// Command mkimage writes pitcrew's OCI image (make image): an OCI layout
// directory and a tarball for `docker load` / `podman load`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pitcrew/pitcrew/internal/jobs/image"
)

func main() {
	bin := flag.String("binary", "bin/pitcrew", "static pitcrew binary (make build)")
	certs := flag.String("certs", image.CertsPath, "CA certificate bundle")
	version := flag.String("version", "dev", "version label and tag")
	revision := flag.String("revision", "", "VCS revision label")
	layoutDir := flag.String("layout", "bin/image", "OCI layout directory to write")
	tar := flag.String("tar", "bin/pitcrew-image.tar", "docker/podman load tarball to write ('' = none)")
	flag.Parse()
	img, err := image.Build(image.Options{Binary: *bin, Certs: *certs, Version: *version, Revision: *revision})
	if err == nil {
		err = image.WriteLayout(*layoutDir, img, "pitcrew:"+*version)
	}
	if err == nil && *tar != "" {
		err = image.WriteTarball(*tar, img, "pitcrew:"+*version)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	d, _ := img.Digest()
	fmt.Printf("image pitcrew:%s %s\n  OCI layout: %s\n  tarball:    %s (docker load -i / podman load -i)\n", *version, d, *layoutDir, *tar)
}
