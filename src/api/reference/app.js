// scanledger API reference: renders /api/openapi.json (OpenAPI 3.1) into this page.
// Served from the binary with a Content-Security-Policy that allows scripts and styles
// from this origin only: no inline code, no third-party assets. Every text from the
// document is inserted as a text node, never as HTML.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function refName(ref) {
  return ref.split("/").pop();
}

function anchor(kind, ...parts) {
  return kind + "-" + parts.join("-").replace(/[^A-Za-z0-9_-]+/g, "_");
}

// The types a schema allows, as text and links to components.
function typeOf(schema) {
  if (!schema || typeof schema !== "object") return ["any"];
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return [el("a", { href: "#" + anchor("schema", name) }, name)];
  }
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(schema[key])) {
      const sep = key === "allOf" ? " & " : " | ";
      const out = [];
      schema[key].forEach((s, i) => {
        if (i) out.push(sep);
        out.push(...typeOf(s));
      });
      return out;
    }
  }
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length === 0) return [schema.properties ? "object" : "any"];
  const out = [];
  types.forEach((t, i) => {
    if (i) out.push(" | ");
    if (t === "array") {
      out.push(...typeOf(schema.items), "[]");
    } else if (t === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
      out.push("map of ", ...typeOf(schema.additionalProperties));
    } else {
      out.push(t);
    }
  });
  return out;
}

// The constraints a schema states (format, enum, pattern, ranges, lengths).
function constraints(schema) {
  if (!schema || typeof schema !== "object") return [];
  const c = [];
  const add = (label) => c.push(el("span", { class: "constraint" }, label));
  if (schema.format) add(schema.format);
  if (Array.isArray(schema.enum)) add("one of: " + schema.enum.join(", "));
  if (schema.pattern) add("pattern " + schema.pattern);
  if (schema.minimum !== undefined) add("≥ " + schema.minimum);
  if (schema.maximum !== undefined) add("≤ " + schema.maximum);
  if (schema.minLength !== undefined) add("length ≥ " + schema.minLength);
  if (schema.maxLength !== undefined) add("length ≤ " + schema.maxLength);
  if (schema.maxItems !== undefined) add("at most " + schema.maxItems + " items");
  if (schema.additionalProperties === false) add("no other fields");
  if (schema.contentMediaType) add("holds " + schema.contentMediaType);
  if (schema.contentSchema) c.push(el("span", { class: "constraint" }, "holding ", ...typeOf(schema.contentSchema)));
  if (schema.type === "array" && schema.items) c.push(...constraints(schema.items).map((n) => (n.prepend("items: "), n)));
  return c;
}

function propertiesTable(schema) {
  const props = schema && schema.properties;
  if (!props) return null;
  const required = new Set(schema.required || []);
  return el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "description"))),
    el("tbody", {}, Object.entries(props).map(([name, p]) =>
      el("tr", {},
        el("td", {}, el("code", {}, name), required.has(name) ? el("span", { class: "required" }, "required") : null),
        el("td", {}, el("span", { class: "mono" }, typeOf(p)), el("div", {}, constraints(p))),
        el("td", {}, el("div", { class: "desc" }, p.description || ""))))));
}

function contentBlock(content) {
  return Object.entries(content || {}).map(([type, media]) => {
    const schema = media.schema || media.itemSchema;
    return el("div", {},
      el("div", {}, el("code", {}, type), " ", el("span", { class: "mono" }, schema ? typeOf(schema) : "")),
      schema && schema.description ? el("div", { class: "desc muted" }, schema.description) : null,
      schema && !schema.$ref ? propertiesTable(schema) : null);
  });
}

function operation(doc, path, method, op) {
  const secured = Array.isArray(op.security) ? op.security.length > 0 : Array.isArray(doc.security) && doc.security.length > 0;
  const body = el("div", { class: "op-body" });
  if (op.summary) body.append(el("p", { class: "desc" }, op.summary));
  if (op.description) body.append(el("p", { class: "desc" }, op.description));
  const params = op.parameters || [];
  if (params.length) {
    body.append(el("h4", {}, "Parameters"), el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description"))),
      el("tbody", {}, params.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "required" }, "required") : null),
        el("td", {}, p.in),
        el("td", {}, el("span", { class: "mono" }, typeOf(p.schema)), el("div", {}, constraints(p.schema))),
        el("td", {}, el("div", { class: "desc" }, p.description || "")))))));
  }
  if (op.requestBody) {
    body.append(el("h4", {}, "Request body", op.requestBody.required ? "" : " (optional)"), ...contentBlock(op.requestBody.content));
  }
  const responses = Object.entries(op.responses || {}).sort(([a], [b]) => a.localeCompare(b));
  body.append(el("h4", {}, "Responses"), el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning"), el("th", {}, "body"))),
    el("tbody", {}, responses.map(([status, r]) => el("tr", {},
      el("td", { class: "status-code" }, status),
      el("td", {}, el("div", { class: "desc" }, r.description || ""),
        r.headers ? el("div", { class: "muted" }, "headers: ", Object.keys(r.headers).join(", ")) : null),
      el("td", {}, contentBlock(r.content)))))));
  return el("section", { class: "op", id: anchor("op", method, path) },
    el("h3", {}, el("span", { class: "method " + method }, method), path,
      el("span", { class: "lock" }, secured ? "bearer token" : "no token")),
    body);
}

function render(doc) {
  const toc = document.getElementById("toc");
  const content = document.getElementById("content");
  toc.replaceChildren();
  content.replaceChildren();
  const info = doc.info || {};
  document.title = (info.title || "API") + " " + (info.version || "") + " — API reference";
  content.append(el("h2", {}, (info.title || "API") + " ", el("span", { class: "muted" }, info.version || "")),
    info.description ? el("p", { class: "desc" }, info.description) : null,
    el("p", { class: "muted" }, "OpenAPI " + (doc.openapi || "?")));

  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, op]);
    }
  }
  for (const [tag, ops] of byTag) {
    ops.sort((a, b) => a[0].localeCompare(b[0]) || METHODS.indexOf(a[1]) - METHODS.indexOf(b[1]));
    toc.append(el("h2", {}, tag));
    content.append(el("h2", { class: "tag-title", id: anchor("tag", tag) }, tag));
    for (const [path, method, op] of ops) {
      toc.append(el("a", { href: "#" + anchor("op", method, path) }, el("span", { class: "method " + method }, method), path));
      content.append(operation(doc, path, method, op));
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  toc.append(el("h2", {}, "schemas"));
  content.append(el("h2", { class: "tag-title", id: "schemas" }, "Schemas"));
  for (const name of Object.keys(schemas).sort()) {
    const s = schemas[name];
    toc.append(el("a", { href: "#" + anchor("schema", name) }, name));
    content.append(el("section", { class: "schema", id: anchor("schema", name) },
      el("h3", {}, name),
      s.description ? el("p", { class: "desc" }, s.description) : null,
      el("div", {}, el("span", { class: "mono" }, typeOf(s)), " ", constraints(s)),
      propertiesTable(s)));
  }
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
  }
}

async function load(token) {
  const status = document.getElementById("status");
  const form = document.getElementById("auth");
  status.className = "";
  status.textContent = "Loading the document…";
  const headers = token ? { Authorization: "Bearer " + token } : {};
  let resp;
  try {
    resp = await fetch("/api/openapi.json", { headers, cache: "no-store", credentials: "omit" });
  } catch (e) {
    status.className = "error";
    status.textContent = "The server could not be reached.";
    return;
  }
  if (resp.status === 401 || resp.status === 403) {
    form.hidden = false;
    status.className = token ? "error" : "";
    status.textContent = token ? "That token was refused (" + resp.status + ")." : "Enter a token to read the document.";
    return;
  }
  if (!resp.ok) {
    status.className = "error";
    status.textContent = "The document could not be loaded (" + resp.status + ").";
    return;
  }
  const doc = await resp.json();
  form.hidden = true;
  status.textContent = "";
  render(doc);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("auth");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(document.getElementById("token").value.trim());
  });
  load(null);
});
