package registry

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
)

func TestFunctionURLs(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "web", func(in *CreateInput) { in.Publish = true })
	if _, err := r.CreateAlias(ctx, "web", AliasInput{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	c, arn, err := r.CreateFunctionURL(ctx, "web", "", URLUpdate{AuthType: new(URLAuthNone)})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{32}$`).MatchString(c.ID) || c.InvokeMode != URLModeBuffered || arn != "arn:aws:lambda:us-east-1:000000000000:function:web:$LATEST" {
		t.Errorf("create = %+v %s", c, arn)
	}
	if tg, ok := r.LookupURL(c.ID); !ok || tg.Function != "web" || tg.Qualifier != Latest {
		t.Errorf("lookup = %+v %v", tg, ok)
	}
	if _, _, err := r.CreateFunctionURL(ctx, "web", Latest, URLUpdate{AuthType: new(URLAuthNone)}); !errors.Is(err, ErrExists) {
		t.Errorf("second URL for $LATEST: %v", err)
	}
	live, _, err := r.CreateFunctionURL(ctx, "web", "live", URLUpdate{AuthType: new(URLAuthIAM),
		Cors: &Cors{AllowOrigins: []string{"https://example.com"}, AllowMethods: []string{"GET", "POST"}, MaxAge: 300}})
	if err != nil || live.ID == c.ID {
		t.Fatalf("alias URL = %+v, %v", live, err)
	}
	// Update keeps the id; unset fields stay.
	u, _, err := r.UpdateFunctionURL(ctx, "web", "live", URLUpdate{AuthType: new(URLAuthNone)})
	if err != nil || u.ID != live.ID || u.AuthType != URLAuthNone || u.Cors == nil || u.Cors.MaxAge != 300 {
		t.Fatalf("update = %+v, %v", u, err)
	}
	if tg, _ := r.LookupURL(live.ID); tg.Config.AuthType != URLAuthNone {
		t.Error("the index kept the old settings")
	}
	cfgs, arns, err := r.ListFunctionURLs("web")
	if err != nil || len(cfgs) != 2 || cfgs[0].ID != c.ID || arns[1] != "arn:aws:lambda:us-east-1:000000000000:function:web:live" {
		t.Fatalf("list = %v %v %v", cfgs, arns, err)
	}
	// Bad input.
	for _, tc := range []struct {
		name      string
		qualifier string
		in        URLUpdate
		want      error
	}{
		{"a version", "1", URLUpdate{AuthType: new(URLAuthNone)}, ErrValidation},
		{"no auth type", "", URLUpdate{}, ErrValidation},
		{"unknown auth type", "", URLUpdate{AuthType: new("OPEN")}, ErrValidation},
		{"streaming", "", URLUpdate{AuthType: new(URLAuthNone), InvokeMode: new(URLModeStreaming)}, ErrValidation},
		{"bad origin", "", URLUpdate{AuthType: new(URLAuthNone), Cors: &Cors{AllowOrigins: []string{"example.com"}}}, ErrValidation},
		{"max age", "", URLUpdate{AuthType: new(URLAuthNone), Cors: &Cors{MaxAge: 86401}}, ErrValidation},
		{"unknown alias", "nope", URLUpdate{AuthType: new(URLAuthNone)}, ErrNotFound},
	} {
		fn := "web2"
		if tc.want == ErrNotFound {
			fn = "web"
		}
		if _, _, err := r.CreateFunctionURL(ctx, fn, tc.qualifier, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Deleting the alias, then the function, takes their URLs away.
	if err := r.DeleteAlias(ctx, "web", "live"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LookupURL(live.ID); ok {
		t.Error("the alias's URL outlived the alias")
	}
	if err := r.DeleteFunctionURL(ctx, "web", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LookupURL(c.ID); ok {
		t.Error("a deleted URL still leads somewhere")
	}
	if err := r.DeleteFunctionURL(ctx, "web", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	c, _, _ = r.CreateFunctionURL(ctx, "web", "", URLUpdate{AuthType: new(URLAuthNone)})
	if err := r.Delete(ctx, "web", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LookupURL(c.ID); ok {
		t.Error("a deleted function's URL still leads somewhere")
	}
}

func TestListAll(t *testing.T) {
	r := newTestRegistry(t)
	ctx := context.Background()
	create(t, r, "b", func(in *CreateInput) { in.Publish = true })
	create(t, r, "a", func(*CreateInput) {})
	create(t, r, "c", func(in *CreateInput) { in.Publish = true })
	var got []string
	marker := ""
	for range 10 {
		page, next, err := r.ListAll(ctx, marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			got = append(got, c.FunctionName+":"+c.Version)
		}
		if next == "" {
			break
		}
		marker = next
	}
	want := []string{"a:$LATEST", "b:$LATEST", "b:1", "c:$LATEST", "c:1"}
	if !slices.Equal(got, want) {
		t.Errorf("ListAll pages = %v, want %v", got, want)
	}
	if _, _, err := r.ListAll(ctx, "bm90LWEtbWFya2Vy", 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("a bad marker: %v", err)
	}
}
