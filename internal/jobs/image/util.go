package image

import (
	"bytes"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
)

type readCloser = io.ReadCloser

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func nameTag(ref string) (name.Tag, error) { return name.NewTag(ref) }
