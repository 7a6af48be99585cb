package storagetest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// wantEqual reports every field where got differs from want.
//
// Times compare with Equal (a backend need not keep the location) but must come
// back in UTC with nanosecond precision. A nil and an empty slice are the same:
// SQL has no such distinction, and no caller may depend on one.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	var diffs []string
	walk(reflect.ValueOf(got), reflect.ValueOf(want), what, &diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

var timeType = reflect.TypeFor[time.Time]()

func walk(g, w reflect.Value, path string, diffs *[]string) {
	mismatch := func(gv, wv any) {
		*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, gv, wv))
	}
	if g.Type() == timeType {
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		switch {
		case !gt.Equal(wt):
			mismatch(fmtTime(gt), fmtTime(wt))
		case gt.Location() != time.UTC:
			*diffs = append(*diffs, fmt.Sprintf("%s: got location %v, want UTC", path, gt.Location()))
		}
		return
	}
	switch g.Kind() {
	case reflect.Struct:
		for i := range g.NumField() {
			if f := g.Type().Field(i); f.IsExported() {
				walk(g.Field(i), w.Field(i), path+"."+f.Name, diffs)
			}
		}
	case reflect.Pointer:
		if g.IsNil() || w.IsNil() {
			if g.IsNil() != w.IsNil() {
				mismatch(g.Interface(), w.Interface())
			}
			return
		}
		walk(g.Elem(), w.Elem(), path, diffs)
	case reflect.Slice:
		if g.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(g.Bytes(), w.Bytes()) {
				mismatch(fmt.Sprintf("%x", g.Bytes()), fmt.Sprintf("%x", w.Bytes()))
			}
			return
		}
		if g.Len() != w.Len() {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %d elements, want %d", path, g.Len(), w.Len()))
			return
		}
		for i := range g.Len() {
			walk(g.Index(i), w.Index(i), fmt.Sprintf("%s[%d]", path, i), diffs)
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			mismatch(fmt.Sprintf("%#v", g.Interface()), fmt.Sprintf("%#v", w.Interface()))
		}
	}
}

// fmtTime shows full precision, and "zero" rather than year 1.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano)
}
