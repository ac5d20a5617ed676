#!/usr/bin/env python3
"""Extract ARM's published schema for the types scanledger's rules read.

The Azure REST API definitions (Azure/azure-rest-api-specs) are too large to vendor
(several GB). Microsoft's Python management SDKs are generated from them by AutoRest and
record exactly which specification commit and readme they were generated from
(`_meta.json` in each package's source distribution); their models' `_attribute_map`s
are the wire shape of every definition (`properties.subnets` → `[Subnet]`). This script
downloads the pinned source distributions from PyPI with pip, reads those maps with
Python's `ast` (no SDK code is imported or run), and writes, per package, the models
reachable from each resource type the catalogue reads:

    tests/fixtures/arm-schema/<name>.json
    {"source": {"repo", "commit", "path", "tag", "via"}, "api_version",
     "types": {"Microsoft.Network/virtualNetworks": "VirtualNetwork"},
     "models": {"VirtualNetwork": {"id": "str", "properties": {"subnets": "[Subnet]"}}}}

A model is a tree of member names ending in a type: a primitive (`str`, `int`, `bool`,
`float`, `iso-8601`, ...), `object` (free-form), `[T]` (array), `{T}` (map with any
keys) or another model's name. `"": "{object}"` (AutoRest's additional properties)
means any member is allowed. Subclasses of a polymorphic model (`_subtype_map`) are
merged into it.

    python3 tools/arm-schema/extract.py            # all packages of sources.json
    python3 tools/arm-schema/extract.py network        # one entry (or a package)

tests/schema.rs resolves every property path of every rule's fixtures (and `reads`)
against these files. Pinned versions live in tools/arm-schema/sources.json; a cache of
the downloads goes to target/arm-schema-cache/.
"""

import ast
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tools/arm-schema/sources.json"
OUT = ROOT / "tests/fixtures/arm-schema"
CACHE = ROOT / "target/arm-schema-cache"


def sdist(package, version):
    CACHE.mkdir(parents=True, exist_ok=True)
    for stem in (package.replace("-", "_") + "-" + version, package + "-" + version):
        for ext in (".tar.gz", ".zip"):
            found = CACHE / (stem + ext)
            if found.exists():
                return found
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"{package}=={version}", "--no-deps",
         "--no-binary", ":all:", "-d", str(CACHE), "-q"],
        check=True,
    )
    return sdist(package, version)


def read_archive(archive):
    """Path inside the source distribution (below its top folder) → text, for the
    files we read (`_meta.json`, `_configuration.py`, models)."""
    wanted = re.compile(r"(_meta\.json|_configuration\.py|_models(_py3)?\.py)$")
    out = {}
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if wanted.search(name):
                    out[name.split("/", 1)[1]] = z.read(name).decode("utf-8")
        return out
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if m.isfile() and wanted.search(m.name):
                out[m.name.split("/", 1)[1]] = tar.extractfile(m).read().decode("utf-8")
    return out


def literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def parse_models(text):
    """class name → (bases, attribute map, subtype map)."""
    classes = {}
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs, subtypes = {}, {}
        for stmt in node.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if "_attribute_map" in names:
                    attrs = literal(stmt.value) or {}
                if "_subtype_map" in names:
                    subtypes = literal(stmt.value) or {}
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        classes[node.name] = (bases, attrs, subtypes)
    return classes


def split_key(key):
    # AutoRest escapes literal dots in member names as `\\.`.
    parts = re.split(r"(?<!\\)\.", key)
    return [p.replace("\\.", ".") for p in parts]


def referenced(t):
    inner = t.strip("[]{}")
    return inner


PRIMITIVES = {"str", "int", "long", "bool", "float", "decimal", "iso-8601", "rfc-1123",
              "duration", "date", "time", "unix-time", "base64", "bytearray", "object"}


def insert(tree, path, t):
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if isinstance(child, str):
            child = {"$type": child}
        node[part] = child = child or {}
        node = child
    last = path[-1]
    if isinstance(node.get(last), dict):
        node[last]["$type"] = t
    else:
        node[last] = t


def tree_of(name, classes, seen=None):
    """The member tree of a model, with its polymorphic subclasses merged in."""
    seen = seen or set()
    if name in seen or name not in classes:
        return {}
    seen = seen | {name}
    bases, attrs, subtypes = classes[name]
    tree = {}
    # A subclass that does not restate its base's map inherits it.
    for base in bases:
        merge(tree, tree_of(base, classes, seen))
    for spec in attrs.values():
        key, t = spec.get("key", ""), spec.get("type", "object")
        if key == "":
            tree[""] = t
            continue
        insert(tree, split_key(key), t)
    for mapping in subtypes.values():
        for sub in mapping.values():
            merge(tree, tree_of(sub, classes, seen))
    return tree


def merge(into, other):
    for k, v in other.items():
        if k not in into:
            into[k] = v
        elif isinstance(into[k], dict) and isinstance(v, dict):
            merge(into[k], v)
        elif isinstance(into[k], dict) and isinstance(v, str):
            into[k].setdefault("$type", v)
        elif isinstance(into[k], str) and isinstance(v, dict):
            v = dict(v)
            v.setdefault("$type", into[k])
            into[k] = v


def types_in(tree):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from types_in(v)
        else:
            yield v


def extract(entry):
    package, version = entry["package"], entry["version"]
    archive = sdist(package, version)
    files = read_archive(archive)
    meta = json.loads(files["_meta.json"])
    folder = entry["folder"].rstrip("/") + "/"
    models_dir = folder + "models/"
    text = files.get(models_dir + "_models_py3.py") or files.get(models_dir + "_models.py")
    if text is None:
        raise SystemExit(f"{package} {version}: no models under {models_dir}")
    classes = parse_models(text)
    dated = re.search(r"/v(\d{4}_\d{2}_\d{2}(?:_preview)?)/$", "/" + folder)
    config = files.get(folder + "_configuration.py", "")
    found = re.search(r'kwargs\.pop\("api_version",\s*"([^"]+)"\)', config) or re.search(
        r'api_version\s*=\s*"(\d{4}-\d{2}-\d{2}[^"]*)"', config
    )
    if entry.get("api_version"):
        api_version = entry["api_version"]
    elif dated:
        api_version = dated.group(1).replace("_", "-")
    elif found:
        api_version = found.group(1)
    else:
        api_version = entry.get("api_version", "unknown")
    models, pending = {}, list(entry["types"].values())
    while pending:
        name = pending.pop()
        if name in models:
            continue
        if name not in classes:
            raise SystemExit(f"{package}: no model {name} in {models_dir}")
        models[name] = tree_of(name, classes)
        for t in types_in(models[name]):
            inner = referenced(t)
            if inner not in PRIMITIVES and inner in classes and inner not in models:
                pending.append(inner)
    tags = [k for k in meta if k.startswith("package-")]
    return {
        "generated_by": "tools/arm-schema/extract.py (do not edit by hand)",
        "source": {
            "repo": meta.get("repository_url", "").replace("https://github.com/", ""),
            "commit": meta["commit"],
            "path": entry.get("spec_path") or meta.get("readme"),
            "tag": entry.get("tag") or (tags[-1] if tags else meta.get("tag")),
            "via": f"{package} {version} (PyPI source distribution, AutoRest), {models_dir}",
            **({"note": entry["note"]} if "note" in entry else {}),
        },
        "api_version": api_version,
        "types": entry["types"],
        "models": dict(sorted(models.items())),
    }


def main():
    sources = json.loads(SOURCES.read_text())
    only = set(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    for entry in sources["packages"]:
        if only and entry["name"] not in only and entry["package"] not in only:
            continue
        doc = extract(entry)
        path = OUT / (entry["name"] + ".json")
        path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(doc['types'])} types, {len(doc['models'])} models, api {doc['api_version']}, specs {doc['source']['commit'][:12]}")


if __name__ == "__main__":
    main()
