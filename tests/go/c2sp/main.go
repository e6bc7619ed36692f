// Command c2sp checks a running diplog server as any C2SP transparency-log client would, with
// Go's golang.org/x/mod/sumdb/note and sumdb/tlog and nothing of diplog's: it verifies the
// checkpoint with the verifier key, reads hash tiles and entry bundles over HTTP, proves every
// entry's inclusion in the current tree and the current tree's consistency with an earlier
// checkpoint, and checks that each bundled entry hashes to its leaf.
//
// Usage: c2sp -url http://127.0.0.1:8080 -vkey 'name+id+key' -old old-checkpoint.txt
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

func main() {
	url := flag.String("url", "", "the server's HTTP base URL")
	vkey := flag.String("vkey", "", "the log's verifier key")
	oldPath := flag.String("old", "", "a file holding an earlier checkpoint of the log")
	flag.Parse()
	if err := run(strings.TrimRight(*url, "/"), *vkey, *oldPath); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

func run(base, vkey, oldPath string) error {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	oldText, err := os.ReadFile(oldPath)
	if err != nil {
		return err
	}
	old, err := openCheckpoint(oldText, verifier)
	if err != nil {
		return fmt.Errorf("old checkpoint: %v", err)
	}
	newText, err := get(base + "/checkpoint")
	if err != nil {
		return err
	}
	tree, err := openCheckpoint(newText, verifier)
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	if tree.N < old.N {
		return fmt.Errorf("the tree shrank from %d to %d", old.N, tree.N)
	}
	reader := tlog.TileHashReader(tree, &httpTiles{base: base})

	// Every entry: its bundle's bytes hash to the leaf, which is in the tree.
	for index := int64(0); index < tree.N; index++ {
		entry, err := entryAt(base, tree.N, index)
		if err != nil {
			return err
		}
		leaf := tlog.RecordHash(entry)
		stored, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
		if err != nil {
			return fmt.Errorf("leaf %d: %v", index, err)
		}
		if stored[0] != leaf {
			return fmt.Errorf("entry %d does not hash to the leaf in the hash tile", index)
		}
		proof, err := tlog.ProveRecord(tree.N, index, reader)
		if err != nil {
			return fmt.Errorf("inclusion proof of %d: %v", index, err)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, leaf); err != nil {
			return fmt.Errorf("inclusion of %d: %v", index, err)
		}
	}
	proof, err := tlog.ProveTree(tree.N, old.N, reader)
	if err != nil {
		return fmt.Errorf("consistency proof %d -> %d: %v", old.N, tree.N, err)
	}
	if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("consistency %d -> %d: %v", old.N, tree.N, err)
	}
	fmt.Printf("ok: checkpoint of size %d verified; %d entries proved from tiles; consistent with size %d\n",
		tree.N, tree.N, old.N)
	return nil
}

// openCheckpoint verifies a signed note and reads its checkpoint body: origin (the key's
// name), size, base64 root.
func openCheckpoint(text []byte, verifier note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(text, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return tlog.Tree{}, fmt.Errorf("fewer than three lines")
	}
	if lines[0] != verifier.Name() {
		return tlog.Tree{}, fmt.Errorf("origin %q is not the key's name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("root %q is not a base64 hash", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], root)
	return tree, nil
}

// c2spPath turns Go's tile path (tile/H/L/N[.p/W], data tiles at L "data") into the C2SP
// one (tile/L/N[.p/W], entry bundles at tile/entries/…): the index encoding is Go's own.
func c2spPath(t tlog.Tile) string {
	path := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	if strings.HasPrefix(path, "data/") {
		path = "entries/" + strings.TrimPrefix(path, "data/")
	}
	return "/tile/" + path
}

type httpTiles struct{ base string }

func (h *httpTiles) Height() int { return height }

func (h *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		body, err := get(h.base + c2spPath(t))
		if err != nil {
			return nil, err
		}
		data[i] = body
	}
	return data, nil
}

func (h *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// bundles holds the entry bundles read so far, by path.
var bundles = map[string][]byte{}

// entryAt reads entry `index` from the entry bundle the tree of size n has for it.
func entryAt(base string, n, index int64) ([]byte, error) {
	tile := tlog.TileForIndex(height, tlog.StoredHashIndex(0, index))
	tile.L = -1
	if full := (tile.N + 1) << height; full > n {
		tile.W = int(n - tile.N<<height)
	} else {
		tile.W = 1 << height
	}
	path := c2spPath(tile)
	bundle, ok := bundles[path]
	if !ok {
		var err error
		if bundle, err = get(base + path); err != nil {
			return nil, err
		}
		bundles[path] = bundle
	}
	want := index - tile.N<<height
	for i := int64(0); ; i++ {
		if len(bundle) < 2 {
			return nil, fmt.Errorf("bundle %s ends before entry %d", c2spPath(tile), want)
		}
		size := int(binary.BigEndian.Uint16(bundle))
		if len(bundle) < 2+size {
			return nil, fmt.Errorf("bundle %s: entry %d is cut short", c2spPath(tile), i)
		}
		if i == want {
			return bundle[2 : 2+size], nil
		}
		bundle = bundle[2+size:]
	}
}

func get(url string) ([]byte, error) {
	response, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return nil, err
	}
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, response.Status, bytes.TrimSpace(body))
	}
	return body, nil
}
