package syncer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

func TestLocalAhead(t *testing.T) {
	row := "0-1-10"
	rowSet := gtid.MustParse(gtid.MariaDB, row)
	pos := func(set, written string) checkpoint.Position {
		return checkpoint.Position{Flavor: gtid.MariaDB, GTIDSet: set, Written: written}
	}
	for _, c := range []struct {
		name  string
		local checkpoint.Position
		ahead string // "" = not ahead
	}{
		{"ahead by echoes since it wrote the row", pos("0-1-12", row), "0-1-12"},
		{"at the row", pos("0-1-10", row), "0-1-10"},
		{"wrote another row", pos("0-1-12", "0-1-9"), ""},
		{"never wrote one", pos("0-1-12", ""), ""},
		{"behind the row", pos("0-1-8", row), ""},
		{"not a set", pos("x", row), ""},
	} {
		got, ok := LocalAhead(c.local, row, rowSet)
		if ok != (c.ahead != "") || ok && got.String() != c.ahead {
			t.Errorf("%s: LocalAhead = %q, %v; want %q", c.name, got.String(), ok, c.ahead)
		}
	}
}

func TestFetchStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(Status{Channel: "main", AppliedGTIDSet: "0-1-5"})
	}))
	defer srv.Close()
	ctx := context.Background()
	st, err := FetchStatus(ctx, srv.URL, "s3cret")
	if err != nil || st.Channel != "main" || st.AppliedGTIDSet != "0-1-5" {
		t.Fatalf("FetchStatus = %+v, %v", st, err)
	}
	if _, err := FetchStatus(ctx, srv.URL, ""); err == nil || err.Error() != srv.URL+"/status: 401 Unauthorized" {
		t.Fatalf("without the token: %v", err)
	}
	if _, err := FetchStatus(ctx, "", ""); err == nil || err.Error() != "no URL" {
		t.Fatalf("no URL: %v", err)
	}
	if all, err := FetchStatuses(ctx, srv.URL, "s3cret"); err == nil {
		t.Fatalf("an object is not a list: %v, %v", all, err)
	}
}
