package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"moat.dev/moat/internal/rules"
)

// These tests run nothing suspicious: they check the action table, its
// documentation and the parts that are safe anywhere (list, unknown
// actions, egress to a loopback server).

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

func TestActionTable(t *testing.T) {
	builtin := map[string]bool{}
	for _, info := range rules.Builtins() {
		builtin[info.Name] = true
	}
	seen := map[string]bool{}
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			if !nameRE.MatchString(a.name) || a.name == "list" {
				t.Errorf("action name %q: want lower-case words joined by hyphens, not list", a.name)
			}
			if seen[a.name] {
				t.Errorf("action %q listed twice", a.name)
			}
			seen[a.name] = true
			if a.run == nil {
				t.Error("no run function")
			}
			switch {
			case a.rule == "" && a.name != "egress":
				t.Error("no rule: every action but egress must name the built-in rule that catches it")
			case a.rule != "" && !builtin[a.rule]:
				t.Errorf("rule %q is not a built-in rule", a.rule)
			}
		})
	}
}

// readmeRow matches a row of README.md's action table: | `name` | what | `rule` or — | why |.
var readmeRow = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|")

func TestREADMEMatchesTable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{} // action → rule
	var order []string
	for line := range strings.Lines(string(b)) {
		if !readmeRow.MatchString(line) {
			continue
		}
		// An escaped bar inside a cell is not a column separator.
		cells := strings.Split(strings.ReplaceAll(strings.TrimSpace(line), `\|`, "\x00"), "|")
		if len(cells) != 6 { // empty, 4 columns, empty
			t.Errorf("README row has %d columns, want 4: %s", len(cells)-2, line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rule := strings.Trim(strings.TrimSpace(cells[3]), "`")
		if rule == "—" {
			rule = ""
		}
		if _, dup := documented[name]; dup {
			t.Errorf("README lists %s twice", name)
		}
		documented[name] = rule
		order = append(order, name)
	}
	for _, a := range actions {
		rule, ok := documented[a.name]
		switch {
		case !ok:
			t.Errorf("README does not list action %s", a.name)
		case rule != a.rule:
			t.Errorf("README gives %s the rule %q, the code %q", a.name, rule, a.rule)
		}
	}
	for name := range documented {
		if !slices.Contains(actionNames(), name) {
			t.Errorf("README lists %s, which is no action", name)
		}
	}
	if !slices.Equal(order, actionNames()) {
		t.Errorf("README order %v\ndiffers from the code's %v", order, actionNames())
	}
}

func TestHandle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ev      event
		wantErr string
		check   func(t *testing.T, r response)
	}{
		{name: "list", ev: event{Action: "list"}, check: func(t *testing.T, r response) {
			if r.Action != "list" || !slices.Equal(r.Actions, actionNames()) || len(r.Steps) != 0 {
				t.Errorf("list = %+v", r)
			}
			if r.Rules["shell"] != "shell-spawned" || r.Rules["keyctl-burst"] != "denied-burst" || len(r.Rules) != len(actions) {
				t.Errorf("list rules = %v", r.Rules)
			}
		}},
		{name: "unknown action", ev: event{Action: "format-disk"}, wantErr: `unknown action "format-disk"`},
		{name: "no action", ev: event{}, wantErr: `unknown action ""`},
		{name: "egress without url", ev: event{Action: "egress"}, check: func(t *testing.T, r response) {
			if len(r.Steps) != 1 || !strings.Contains(r.Steps[0].Err, "no url") {
				t.Errorf("steps = %+v", r.Steps)
			}
		}},
		{name: "egress to a non-http url", ev: event{Action: "egress", URL: "file:///etc/passwd"}, check: func(t *testing.T, r response) {
			if len(r.Steps) != 1 || !strings.Contains(r.Steps[0].Err, "http or https") {
				t.Errorf("steps = %+v", r.Steps)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := handle(context.Background(), tc.ev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

// TestEgress sends the GET to a loopback server, which answers with a
// redirect elsewhere: egress reports it and does not follow it.
func TestEgress(t *testing.T) {
	var hits, followed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			return
		}
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()

	r, err := handle(context.Background(), event{Action: "egress", URL: srv.URL + "/data"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].Err != "" || !strings.Contains(r.Steps[0].What, "302 Found") {
		t.Errorf("steps = %+v", r.Steps)
	}
	if hits.Load() != 1 || followed.Load() != 0 {
		t.Errorf("server saw %d requests and %d followed redirects, want 1 and 0", hits.Load(), followed.Load())
	}
}
