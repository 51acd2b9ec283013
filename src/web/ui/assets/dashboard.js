// Dashboard scripts: product form (live validation with the API's rules, add variant rows),
// live activity feed on the home page, new orders on the order list, a "this order
// changed" notice on the order page, the progress bar of a running product import. Every page works
// without this file; it only enhances.
(function () {
  "use strict";

  // ---------- product form ----------
  var form = document.querySelector("form[data-product-form]");
  if (form) {
    var field = function (name) { return form.querySelector('[name="' + name + '"]'); };
    var errorBox = function (name) { return form.querySelector('[data-error-for="' + name + '"]'); };
    var show = function (name, msg) {
      var p = errorBox(name), input = field(name);
      if (p) { p.textContent = msg || ""; p.hidden = !msg; }
      if (input) { if (msg) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); }
    };
    // The API's decimal rules (domain::parse_decimal_minor), two decimals.
    var priceError = function (name, raw) {
      var s = raw.trim();
      if (!s) return null;
      if (/[eE]/.test(s)) return name + ": price '" + raw + "' uses exponent notation";
      if (s.charAt(0) === "-") return name + ": price '" + raw + "' is negative";
      if (s.indexOf(".") < 0 && /^\d*,\d{3}$/.test(s)) return name + ": price '" + raw + "' is ambiguous: ',' followed by three digits may be a thousands separator";
      if ((s.match(/,/g) || []).length === 1 && s.indexOf(".") < 0) s = s.replace(",", ".");
      if (!/^\d*\.?\d*$/.test(s) || s === ".") return name + ": price '" + raw + "' is not a number";
      var frac = (s.split(".")[1] || "").replace(/0+$/, "");
      if (frac.length > 2) return name + ": price '" + raw + "' has more than 2 decimals";
      return null;
    };
    var optionCount = function () {
      var o = field("options");
      return o ? o.value.split(",").map(function (x) { return x.trim(); }).filter(Boolean).length : 0;
    };
    var rowBlank = function (row) {
      return Array.prototype.every.call(row.querySelectorAll("input[type=text], input[type=number], input:not([type])"), function (i) { return !i.value.trim(); });
    };
    var check = function (input) {
      var name = input.name, v = input.value, rule = input.dataset.rule, msg = null;
      var row = input.closest("[data-variant-row]");
      if (row && rowBlank(row)) { show(name, null); return; }
      if (rule === "required" && !v.trim()) msg = name + " is required";
      else if (name === "title" && v.trim().length > 255) msg = "title must be at most 255 characters";
      else if (rule === "handle" && v.trim() && !/^[a-z0-9-]+$/.test(v.trim())) msg = "handle '" + v.trim() + "' must use lowercase a-z, 0-9 and '-'";
      else if (rule === "price") msg = v.trim() ? priceError(name, v) : name + " is required";
      else if (rule === "money") msg = priceError(name, v);
      else if (rule === "integer" && v.trim() && !/^-?\d+$/.test(v.trim())) msg = "inventory quantity must be a whole number";
      else if (rule === "sku" && v.trim().length > 64) msg = name + ": SKU must be 1 to 64 printable characters";
      else if (rule === "option_values") {
        var n = v.split("/").map(function (x) { return x.trim(); }).filter(Boolean).length;
        if (n !== optionCount()) msg = name + ": expected " + optionCount() + " values, one per option";
      } else if (rule === "options" && optionCount() > 3) msg = "a product has at most 3 options";
      else if (rule === "urls") {
        var bad = v.split("\n").map(function (l) { return l.trim(); }).filter(Boolean)
          .filter(function (l) { return !/^https?:\/\//.test(l) || l.length > 2048; });
        if (bad.length) msg = "image url must be an absolute http(s) URL: " + bad[0];
      }
      show(name, msg);
    };
    var validateAll = function () {
      var ok = true;
      form.querySelectorAll("[data-rule]").forEach(function (i) {
        check(i);
        if (i.getAttribute("aria-invalid") === "true") ok = false;
      });
      return ok;
    };
    form.addEventListener("blur", function (e) { if (e.target.dataset && e.target.dataset.rule) check(e.target); }, true);
    form.addEventListener("input", function (e) {
      var t = e.target;
      // Only re-check fields already marked, so typing is not interrupted by errors.
      if (t.dataset && t.dataset.rule && t.getAttribute("aria-invalid") === "true") check(t);
      if (t.name === "options") form.querySelectorAll('[data-rule="option_values"]').forEach(check);
    });
    form.addEventListener("submit", function (e) {
      if (!validateAll()) {
        e.preventDefault();
        var first = form.querySelector('[aria-invalid="true"]');
        if (first) first.focus();
      }
    });
    // Add variant: clone the last row, renumber its fields, clear it.
    var add = form.querySelector("[data-add-variant]");
    var rows = form.querySelector("#variant-rows");
    if (add && rows) {
      add.hidden = false;
      add.addEventListener("click", function () {
        var all = rows.querySelectorAll("[data-variant-row]");
        var last = all[all.length - 1];
        if (!last) return;
        var n = all.length;
        var copy = last.cloneNode(true);
        copy.querySelectorAll("[name],[id],[for],[aria-describedby],[data-error-for]").forEach(function (el) {
          ["name", "id", "for", "aria-describedby", "data-error-for"].forEach(function (a) {
            var v = el.getAttribute(a);
            if (v) el.setAttribute(a, v.replace(/variants\[\d+\]/g, "variants[" + n + "]"));
          });
          if (el.tagName === "INPUT") {
            if (el.type === "checkbox") el.checked = false; else el.value = "";
            el.removeAttribute("aria-invalid");
          }
          if (el.dataset && el.dataset.errorFor) { el.hidden = true; el.textContent = ""; }
        });
        var legend = copy.querySelector("legend");
        if (legend) legend.textContent = "Variant " + (n + 1);
        rows.appendChild(copy);
        var first = copy.querySelector("input");
        if (first) first.focus();
      });
    }
  }

  // ---------- one-time secrets: a Copy button next to each ----------
  document.querySelectorAll("[data-copy]").forEach(function (box) {
    if (!navigator.clipboard) return;
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = "Copy";
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(box.textContent.trim()).then(function () {
        if (window.Souk) window.Souk.toast("Copied to the clipboard");
      });
    });
    box.insertAdjacentElement("afterend", b);
  });

  // ---------- product list: "select all on this page" for the bulk status form ----------
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    var head = bulk.querySelector("thead th");
    var boxes = bulk.querySelectorAll('input[name="ids"]');
    if (head && boxes.length) {
      var all = document.createElement("input");
      all.type = "checkbox";
      all.setAttribute("aria-label", "Select all products on this page");
      all.addEventListener("change", function () {
        boxes.forEach(function (c) { c.checked = all.checked; });
      });
      head.textContent = "";
      head.appendChild(all);
    }
  }

  // ---------- live events ----------
  var text = function (tag, t, cls) {
    var el = document.createElement(tag);
    el.textContent = t;
    if (cls) el.className = cls;
    return el;
  };
  // The feed line of an event. Keep in step with `feed_item` in src/web/ui/dashboard.rs,
  // which renders the feed's history (the last events before the page loaded) the same way.
  var describe = function (ev) {
    var d = ev.data || {};
    switch (ev.type) {
      case "order.created":
        return { text: "New order #" + d.number + " — " + ((d.total && d.total.formatted) || "") + (d.customer_name || d.email ? " from " + (d.customer_name || d.email) : ""), href: d.id ? "/dashboard/orders/" + d.id : null };
      case "payment.received":
        return { text: "Payment received" + (d.order && d.order.number ? " for order #" + d.order.number : "") + (d.amount ? ": " + d.amount.formatted : ""), href: d.order && d.order.id ? "/dashboard/orders/" + d.order.id : null };
      case "import.completed":
        return { text: "Import finished: " + (d.created || 0) + " created, " + (d.updated || 0) + " updated, " + (d.failed || 0) + " failed", href: "/dashboard/imports" };
      case "member.joined":
        return { text: "A new member joined the team" + (d.email ? ": " + d.email : ""), href: null };
      default:
        return null;
    }
  };
  var feed = document.getElementById("live-feed");
  if (feed) {
    document.addEventListener("souk:event", function (e) {
      var item = describe(e.detail);
      if (!item) return;
      var placeholder = feed.querySelector("[data-placeholder]");
      if (placeholder) placeholder.remove();
      var li = document.createElement("li");
      if (item.href) { var a = text("a", item.text); a.href = item.href; li.appendChild(a); }
      else li.appendChild(text("span", item.text));
      var when = e.detail.occurred_at ? new Date(e.detail.occurred_at) : new Date();
      li.appendChild(text("span", " · " + when.toLocaleTimeString(), "muted"));
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 50) feed.removeChild(feed.lastChild);
    });
  }

  // Order list: on the unfiltered first page new orders are prepended; elsewhere a
  // "N new orders — refresh" notice counts them.
  var table = document.querySelector("table[data-live-orders]");
  if (table) {
    var unfiltered = !location.search || location.search === "?page=1";
    var notice = document.getElementById("new-orders");
    var count = 0;
    document.addEventListener("souk:event", function (e) {
      var ev = e.detail, d = ev.data || {};
      if (ev.type !== "order.created") return;
      if (unfiltered) {
        var tbody = table.tBodies[0];
        var empty = tbody.querySelector("[data-empty]");
        if (empty) empty.remove();
        var tr = document.createElement("tr");
        var td = document.createElement("td");
        var a = text("a", "#" + d.number); a.href = "/dashboard/orders/" + d.id; td.appendChild(a); tr.appendChild(td);
        tr.appendChild(text("td", d.customer_name || d.email || "—"));
        [d.status, d.financial_status, d.fulfillment_status].forEach(function (s) {
          var c = document.createElement("td");
          c.appendChild(text("span", String(s || "").replace(/_/g, " "), "badge badge-" + s));
          tr.appendChild(c);
        });
        tr.appendChild(text("td", (d.total && d.total.formatted) || "", "num"));
        tr.appendChild(text("td", "just now"));
        tr.className = "live-new";
        tbody.insertBefore(tr, tbody.firstChild);
      } else if (notice) {
        count += 1;
        notice.querySelector("[data-count]").textContent = String(count);
        notice.hidden = false;
      }
    });
  }

  // Order page: when this order changes elsewhere (another member, the API), a polite
  // notice with a link that reloads the page; the page is never re-rendered under the
  // reader. The page names its order, the state it shows (updated_at) and the event
  // types that change an order (data-order-events, from the server).
  var orderBox = document.querySelector("[data-order-id]");
  if (orderBox) {
    var orderId = orderBox.getAttribute("data-order-id");
    var shownAt = orderBox.getAttribute("data-order-updated-at");
    var orderTypes = (orderBox.getAttribute("data-order-events") || "").split(/\s+/).filter(Boolean);
    var noticed = false;
    document.addEventListener("souk:event", function (e) {
      var ev = e.detail || {}, d = ev.data || {};
      if (noticed || orderTypes.indexOf(ev.type) < 0) return;
      // payment.received carries the order under `order`; order.updated is the order.
      var o = d.order || d;
      if (o.id !== orderId || o.updated_at === shownAt) return;
      noticed = true;
      var p = text("p", "This order changed — ", "flash");
      var a = text("a", "Reload");
      a.href = "/dashboard/orders/" + encodeURIComponent(orderId);
      p.appendChild(a);
      orderBox.appendChild(p);
    });
  }

  // ---------- product import progress ----------
  // Polls the import's progress (and wakes on the import.completed event); when it ends,
  // reloads so the server renders the report.
  var importBox = document.querySelector("[data-product-import-url]");
  if (importBox) {
    var url = importBox.getAttribute("data-product-import-url");
    var bar = document.getElementById("import-progress");
    var out = document.getElementById("import-progress-text");
    var timer = null;
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) return;
          if (bar) { bar.max = j.products_total || 1; bar.value = j.products_done || 0; }
          if (out) out.textContent = (j.products_done || 0) + " of " + (j.products_total || 0) + " products handled.";
          var c = document.getElementById("import-created"), u = document.getElementById("import-updated");
          if (c) c.textContent = String(j.created || 0);
          if (u) u.textContent = String(j.updated || 0);
          if (j.status === "completed" || j.status === "failed") {
            if (timer) clearInterval(timer);
            timer = null;
            window.location.reload();
          }
        })
        .catch(function () {});
    };
    timer = setInterval(poll, 500);
    poll();
    document.addEventListener("souk:event", function (e) {
      if ((e.detail || {}).type === "import.completed") poll();
    });
  }
})();
