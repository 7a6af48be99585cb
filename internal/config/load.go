package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "CASTELLAN_"

// Error is a refusal to start: every problem found, each naming its key and
// where the value came from. Its message is a single line.
type Error struct {
	Source   string // the file, or "environment"
	Problems []string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("config %s: %s", e.Source, strings.Join(e.Problems, "; "))
	// One line, whatever a key or path holds: log lines and "refuse to start"
	// messages must not be split.
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(msg)
}

// loader decodes YAML nodes and environment values into a struct, collecting
// problems with their key paths instead of stopping at the first.
type loader struct {
	file     string
	problems []string
	// fromEnv maps a key path to the variable that set it, for messages.
	fromEnv map[string]string
}

func (l *loader) problem(path, format string, args ...any) {
	where := path
	if where == "" {
		where = "top level"
	}
	if v, ok := l.fromEnv[path]; ok {
		where = path + " (" + v + ")"
	}
	l.problems = append(l.problems, where+": "+fmt.Sprintf(format, args...))
}

// Load reads the YAML file at path (if path is not empty) over Default(), applies
// CASTELLAN_* variables from environ, and validates the result.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	if err := load(path, environ, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// load decodes the YAML file at path (if not empty) and the CASTELLAN_*
// variables of environ into cfg, which holds the defaults, and validates it.
func load(path string, environ []string, cfg interface{ Validate() []string }) error {
	l, err := decode(path, environ, cfg)
	if err != nil {
		return err
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		return &Error{Source: sourceName(path), Problems: l.annotate(problems)}
	}
	return nil
}

// Decode fills dst (a pointer to a struct with yaml tags, already holding its
// defaults) from the file and the environment, without semantic validation. The
// BFF's config uses it too.
func Decode(path string, environ []string, dst any) error {
	_, err := decode(path, environ, dst)
	return err
}

func decode(path string, environ []string, dst any) (*loader, error) {
	l := &loader{file: path, fromEnv: map[string]string{}}
	v := reflect.ValueOf(dst).Elem()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{Source: path, Problems: []string{err.Error()}}
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, &Error{Source: path, Problems: []string{strings.ReplaceAll(err.Error(), "\n", " ")}}
		}
		if len(doc.Content) > 0 {
			l.decodeNode(doc.Content[0], v, "")
		}
	}
	l.applyEnv(v, environ)
	if len(l.problems) > 0 {
		return nil, &Error{Source: sourceName(path), Problems: l.problems}
	}
	return l, nil
}

// annotate adds the variable that set a key to the validation problems about
// that key (or an element of it), so that a value from the environment is not
// looked for in the file: "session.idle_timeout (CASTELLAN_SESSION_IDLE_TIMEOUT): …".
func (l *loader) annotate(problems []string) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p
		key, rest, ok := strings.Cut(p, ": ")
		if !ok {
			continue
		}
		for k := key; ; {
			if name, ok := l.fromEnv[k]; ok {
				out[i] = key + " (" + name + "): " + rest
				break
			}
			j := strings.LastIndexByte(k, '[')
			if j <= 0 || !strings.HasSuffix(k, "]") {
				break
			}
			k = k[:j]
		}
	}
	return out
}

func sourceName(path string) string {
	if path == "" {
		return "environment"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType = reflect.TypeFor[Duration]()
	jsonType     = reflect.TypeFor[JSON]()
)

func (l *loader) decodeNode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with nothing keeps the default
	}
	if v.Type() == jsonType && n.Kind != yaml.ScalarNode {
		var x any
		b, err := []byte(nil), n.Decode(&x)
		if err == nil {
			b, err = json.Marshal(x)
		}
		if err != nil {
			l.problem(path, "line %d: %v", n.Line, err)
			return
		}
		v.SetString(string(b))
		return
	}
	switch {
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			l.problem(path, "line %d: want a mapping of keys", n.Line)
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			// yaml.v3 reports duplicate keys only when decoding into Go values,
			// not into a Node: without this check the last one would silently win.
			if first, dup := seen[key.Value]; dup {
				l.problem(join(path, key.Value), "line %d: duplicate key (first at line %d)", key.Line, first)
				continue
			}
			seen[key.Value] = key.Line
			f, ok := fieldByTag(v, key.Value)
			if !ok {
				l.problem(join(path, key.Value), "line %d: unknown key", key.Line)
				continue
			}
			l.decodeNode(val, f, join(path, key.Value))
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			l.problem(path, "line %d: want a list", n.Line)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			l.decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case v.Kind() == reflect.Slice:
		var items []string
		switch n.Kind {
		case yaml.SequenceNode:
			for i, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					l.problem(fmt.Sprintf("%s[%d]", path, i), "line %d: want a single value", item.Line)
					continue
				}
				items = append(items, item.Value)
			}
		case yaml.ScalarNode:
			items = splitWords(n.Value)
		default:
			l.problem(path, "line %d: want a list", n.Line)
			return
		}
		v.Set(reflect.ValueOf(items))
	default:
		if n.Kind != yaml.ScalarNode {
			l.problem(path, "line %d: want a single value", n.Line)
			return
		}
		if err := setScalar(v, n.Value); err != nil {
			l.problem(path, "line %d: %v", n.Line, err)
		}
	}
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// setScalar parses one textual value into a leaf field.
func setScalar(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration like 30s, 15m or 12h, got %q", s)
		}
		if d < 0 {
			return fmt.Errorf("want a duration that is not negative, got %q", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf(splitWords(s)))
	default:
		return errors.New("unsupported value")
	}
	return nil
}

// splitWords splits a list given as one string: by commas when it has any (so
// that an element may hold a space, as the response type "id_token token"
// does), otherwise by white space.
func splitWords(s string) []string {
	if !strings.Contains(s, ",") {
		return strings.Fields(s)
	}
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// applyEnv overrides leaves from CASTELLAN_* variables. Names are the key path
// upper-cased with "_" between parts: CASTELLAN_SESSION_IDLE_TIMEOUT sets
// session.idle_timeout, CASTELLAN_CLIENTS_0_CLIENT_SECRET sets
// clients[0].client_secret. A variable naming an element past the end of a list
// adds elements up to it, so that a config may come from the environment alone.
// A list of strings is given comma- or space-separated. Variables that name no
// key are ignored, as other programs (and the BFF) share the prefix.
func (l *loader) applyEnv(v reflect.Value, environ []string) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = val
		}
	}
	if len(env) == 0 {
		return
	}
	var names []string
	leaves := map[string]leaf{}
	l.collectLeaves(v, "", EnvPrefix, env, leaves)
	for name := range leaves {
		if _, ok := env[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		lf := leaves[name]
		l.fromEnv[lf.path] = name
		if err := setScalar(lf.v, env[name]); err != nil {
			l.problem(lf.path, "%v", err)
		}
	}
}

type leaf struct {
	path string
	v    reflect.Value
}

// maxEnvListLen bounds the lists that variables may grow, so that a stray
// CASTELLAN_CLIENTS_99999999_… cannot allocate without bound.
const maxEnvListLen = 1000

// collectLeaves maps every variable name that can set a leaf under v to that
// leaf. env, when not nil, lets lists grow to the elements it names.
func (l *loader) collectLeaves(v reflect.Value, path, prefix string, env map[string]string, out map[string]leaf) {
	switch {
	case v.Kind() == reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			l.collectLeaves(v.Field(i), join(path, tag), prefix+strings.ToUpper(tag)+"_", env, out)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if env != nil {
			if n := l.envListLen(v.Type().Elem(), path, prefix, env); n > v.Len() {
				grown := reflect.MakeSlice(v.Type(), n, n)
				reflect.Copy(grown, v)
				v.Set(grown)
			}
		}
		for i := 0; i < v.Len(); i++ {
			l.collectLeaves(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s%d_", prefix, i), env, out)
		}
	default:
		out[strings.TrimSuffix(prefix, "_")] = leaf{path: path, v: v}
	}
}

// envListLen returns how long a list of elem must be for every variable that
// names a leaf of one of its elements (PREFIX<index>_<LEAF>), or 0.
func (l *loader) envListLen(elem reflect.Type, path, prefix string, env map[string]string) int {
	names := map[string]leaf{}
	l.collectLeaves(reflect.New(elem).Elem(), "", "", nil, names)
	n := 0
	for name := range env {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, "_")
		if _, known := names[field]; !ok || !known {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || strconv.Itoa(i) != idx {
			continue
		}
		if i >= maxEnvListLen {
			l.fromEnv[fmt.Sprintf("%s[%d]", path, i)] = name
			l.problem(fmt.Sprintf("%s[%d]", path, i), "list index too large: at most %d elements", maxEnvListLen)
			continue
		}
		n = max(n, i+1)
	}
	return n
}
