// Draws the chart in the page's JSON (hal-sim/src/html/chart.rs) as SVG: time runs left
// to right, the view zooms with the wheel or the buttons and pans by dragging; hovering a
// bar or mark shows the history record behind it. Record text goes into the document
// only as text nodes and attribute values, never as markup.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var GUTTER = 170, NAME_MAX = 24, LANE = 18, ROW = 12, SEATS = 56, GAP = 6, SECTION = 16, AXIS = 22;
  var SHAPES = {
    request: 'circle', retry: 'triangle', redirect: 'diamond', denied: 'square',
    unknown: 'square', unknown_handle: 'square', met: 'diamond', unmet: 'diamond'
  };
  var LEGEND = [
    ['active', 'active'], ['standby', 'standby'], ['down', 'down'], ['cut', 'cut'],
    ['oneway', 'one-way cut'], ['slow', 'slow link'], ['flapping', 'flapping link'],
    ['clock', 'clock off'], ['crash', 'crashed'], ['hold', 'held link'], ['seat', 'seat held'],
    ['request', 'request'], ['retry', 'retry'], ['redirect', 'redirect'], ['denied', 'denied'],
    ['unknown', 'outcome unknown'], ['lost', 'lease lost'], ['met', 'expectation met'],
    ['unmet', 'expectation not met']
  ];

  function fail(error) {
    document.body.setAttribute('data-error', String(error));
    var pre = document.getElementById('error');
    if (!pre) {
      pre = document.createElement('pre');
      pre.id = 'error';
      document.body.insertBefore(pre, document.body.firstChild);
    }
    pre.textContent = 'The page could not draw the run: ' + (error && error.stack ? error.stack : error);
  }
  window.addEventListener('error', function (event) { fail(event.error || event.message); });

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function seconds(ms) { return (ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 3) + ' s'; }

  function start() {
    var data = JSON.parse(document.getElementById('data').textContent);
    var end = Math.max(data.end_ms, 1);
    var view = { from: 0, to: end };
    var chart = document.getElementById('chart');
    var tip = document.getElementById('tooltip');
    var tips = [];
    var width = 0;

    function plotWidth() { return width - GUTTER - 12; }
    function x(t) { return GUTTER + (t - view.from) / (view.to - view.from) * plotWidth(); }
    function timeAt(px) { return view.from + (px - GUTTER) / plotWidth() * (view.to - view.from); }
    function clip(px) { return Math.max(GUTTER, Math.min(width - 12, px)); }
    function visible(from, to) { return to >= view.from && from <= view.to; }

    function tipped(node, label, r, extra) {
      tips.push({ label: label, r: r, extra: extra });
      node.setAttribute('data-i', String(tips.length - 1));
    }

    function label(svg, y, text, cls) {
      var node = el('text', { x: 4, y: y, 'class': cls || 'lane-name' }, svg);
      node.textContent = text;
      return node;
    }

    function laneGroup(svg, cls, name, y, height) {
      var g = el('g', { 'class': 'lane ' + cls, 'data-lane': name }, svg);
      el('rect', { 'class': 'lane-bg', x: GUTTER, y: y, width: plotWidth(), height: height }, g);
      // A long name is cut to fit the gutter; hovering it shows it whole.
      var short = name.length > NAME_MAX ? name.slice(0, NAME_MAX - 1) + '…' : name;
      tipped(label(g, y + height / 2 + 4, short), name, null);
      return g;
    }

    function bars(g, lane, y, height) {
      lane.bars.forEach(function (bar) {
        if (!visible(bar.from_ms, bar.to_ms)) return;
        var x1 = clip(x(bar.from_ms)), x2 = clip(x(bar.to_ms));
        var rect = el('rect', {
          'class': 'bar ' + bar.kind, x: x1, y: y, width: Math.max(x2 - x1, 1.5), height: height
        }, g);
        tipped(rect, bar.label + ' (' + seconds(bar.from_ms) + ' to ' + seconds(bar.to_ms) + ')', bar.r);
        if (x2 - x1 > 60 && height >= LANE - 4) {
          var text = el('text', { 'class': 'bar-label', x: x1 + 3, y: y + height - 4 }, g);
          text.textContent = bar.label;
        }
      });
    }

    function shape(g, kind, cx, cy, size) {
      var s = size, d;
      switch (SHAPES[kind] || 'circle') {
        case 'triangle': d = 'M' + cx + ',' + (cy - s) + 'L' + (cx + s) + ',' + (cy + s) + 'L' + (cx - s) + ',' + (cy + s) + 'Z'; break;
        case 'diamond': d = 'M' + cx + ',' + (cy - s - 1) + 'L' + (cx + s + 1) + ',' + cy + 'L' + cx + ',' + (cy + s + 1) + 'L' + (cx - s - 1) + ',' + cy + 'Z'; break;
        case 'square': d = 'M' + (cx - s) + ',' + (cy - s) + 'h' + (2 * s) + 'v' + (2 * s) + 'h' + (-2 * s) + 'Z'; break;
        default: return el('circle', { 'class': 'mark ' + kind, cx: cx, cy: cy, r: s }, g);
      }
      return el('path', { 'class': 'mark ' + kind, d: d }, g);
    }

    function marks(g, lane, cy, size) {
      lane.marks.forEach(function (mark) {
        if (!visible(mark.t_ms, mark.t_ms)) return;
        tipped(shape(g, mark.kind, x(mark.t_ms), cy, size), mark.label + ' at ' + seconds(mark.t_ms), mark.r);
      });
    }

    function axis(svg, height) {
      var span = view.to - view.from, step = 1;
      while (span / step > 12) {
        step *= (String(step)[0] === '2') ? 2.5 : 2;
      }
      if (data.liveness_from_ms !== null && visible(data.liveness_from_ms, end)) {
        var lx = clip(x(data.liveness_from_ms));
        var live = el('rect', { 'class': 'liveness', x: lx, y: 0, width: clip(x(end)) - lx, height: height }, svg);
        tipped(live, 'liveness phase: every fault healed from ' + seconds(data.liveness_from_ms), null);
      }
      for (var t = Math.ceil(view.from / step) * step; t <= view.to; t += step) {
        var px = x(t);
        el('line', { 'class': 'tick', x1: px, x2: px, y1: AXIS - 4, y2: height }, svg);
        var text = el('text', { 'class': 'tick', x: px + 2, y: AXIS - 8 }, svg);
        text.textContent = seconds(t);
      }
      el('line', { 'class': 'axis', x1: GUTTER, x2: width - 12, y1: AXIS - 4, y2: AXIS - 4 }, svg);
    }

    function seatChart(g, seats, y) {
      var top = Math.max(seats.count, 1);
      seats.steps.forEach(function (s) { top = Math.max(top, s[1]); });
      function sy(n) { return y + SEATS - 2 - n / top * (SEATS - 8); }
      var d = '', previous = null;
      seats.steps.forEach(function (s) {
        var px = clip(x(s[0]));
        if (previous === null) d += 'M' + px + ',' + sy(s[1]);
        else d += 'H' + px + 'V' + sy(s[1]);
        previous = s;
      });
      d += 'H' + clip(x(end));
      el('path', { 'class': 'in-use', d: d }, g);
      el('line', { 'class': 'count', x1: GUTTER, x2: width - 12, y1: sy(seats.count), y2: sy(seats.count) }, g);
      var countLabel = el('text', { x: GUTTER - 40, y: sy(seats.count) + 4, 'class': 'count-label' }, g);
      countLabel.textContent = 'COUNT ' + seats.count;
      seats.steps.forEach(function (s) {
        if (!visible(s[0], s[0])) return;
        var dot = el('circle', { 'class': 'step', cx: x(s[0]), cy: sy(s[1]), r: 2, fill: '#3b6fb6' }, g);
        tipped(dot, seats.feature + ': ' + s[1] + ' of ' + seats.count + ' seats in use from ' + seconds(s[0]), null);
      });
    }

    function draw() {
      width = Math.max(document.documentElement.clientWidth - 24, 800);
      tips = [];
      chart.textContent = '';
      var svg = el('svg', { width: width }, null);
      var body = el('g', {}, null);
      var y = AXIS + 4;
      function section(name) { label(body, y + 12, name, 'section'); y += SECTION; }

      section('servers');
      data.servers.forEach(function (lane) {
        var g = laneGroup(body, 'server', lane.name, y, LANE);
        bars(g, lane, y, LANE);
        y += LANE + 2;
      });
      y += GAP;
      if (data.faults.length) {
        section('faults');
        data.faults.forEach(function (lane) {
          var g = laneGroup(body, 'fault', lane.name, y, ROW);
          bars(g, lane, y, ROW);
          y += ROW + 2;
        });
        y += GAP;
      }
      section('seats in use');
      data.seats.forEach(function (seats) {
        var g = laneGroup(body, 'seats', seats.feature, y, SEATS);
        seatChart(g, seats, y);
        y += SEATS + 2;
      });
      y += GAP;
      section('clients');
      data.clients.forEach(function (lane) {
        var g = laneGroup(body, 'client', lane.name, y, LANE);
        bars(g, lane, y + 3, LANE - 6);
        marks(g, lane, y + LANE / 2, 3.5);
        y += LANE + 2;
      });
      y += GAP;
      var g = laneGroup(body, 'expects', 'expectations', y, LANE);
      marks(g, data.expects, y + LANE / 2, 5);
      y += LANE + GAP;

      axis(svg, y);
      svg.appendChild(body);
      if (data.violation) {
        var v = data.violation, vx = x(v.t_ms);
        var line = el('line', { 'class': 'violation', x1: vx, x2: vx, y1: AXIS - 4, y2: y }, svg);
        var mark = el('text', { 'class': 'violation', x: vx + 4, y: AXIS + 12 }, svg);
        mark.textContent = 'violation: ' + v.invariant;
        var extra = v.what + '\n\n' + v.evidence.join('\n');
        tipped(line, 'invariant violated: ' + v.invariant + ' at ' + seconds(v.t_ms), null, extra);
        tipped(mark, 'invariant violated: ' + v.invariant + ' at ' + seconds(v.t_ms), null, extra);
      }
      svg.setAttribute('height', y);
      chart.appendChild(svg);
      document.getElementById('window').textContent =
        seconds(Math.round(view.from)) + ' to ' + seconds(Math.round(view.to)) + ' of ' + seconds(end);
    }

    function show(event) {
      var index = event.target.getAttribute && event.target.getAttribute('data-i');
      if (index === null || index === undefined || dragging) { tip.hidden = true; return; }
      var item = tips[Number(index)];
      var text = item.label;
      if (item.r !== null && item.r !== undefined) {
        text += '\n\n' + JSON.stringify(JSON.parse(data.records[item.r]), null, 2);
      }
      if (item.extra) text += '\n\n' + item.extra;
      tip.textContent = text;
      tip.hidden = false;
      var left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      var top = event.clientY + 14;
      if (top + tip.offsetHeight > window.innerHeight) top = Math.max(4, event.clientY - tip.offsetHeight - 8);
      tip.style.left = Math.max(4, left) + 'px';
      tip.style.top = top + 'px';
    }

    function zoom(factor, around) {
      var span = Math.min(Math.max((view.to - view.from) * factor, 10), end);
      var from = around - (around - view.from) * span / (view.to - view.from);
      from = Math.max(0, Math.min(from, end - span));
      view = { from: from, to: from + span };
      draw();
    }

    var dragging = null;
    chart.addEventListener('wheel', function (event) {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 0.8 : 1.25, Math.max(view.from, Math.min(view.to, timeAt(event.offsetX))));
    }, { passive: false });
    chart.addEventListener('mousedown', function (event) {
      dragging = { x: event.clientX, from: view.from, to: view.to };
      tip.hidden = true;
    });
    window.addEventListener('mouseup', function () { dragging = null; });
    window.addEventListener('mousemove', function (event) {
      if (!dragging) return;
      var span = dragging.to - dragging.from;
      var from = dragging.from - (event.clientX - dragging.x) / plotWidth() * span;
      from = Math.max(0, Math.min(from, end - span));
      view = { from: from, to: from + span };
      draw();
    });
    chart.addEventListener('mousemove', show);
    chart.addEventListener('mouseleave', function () { tip.hidden = true; });
    document.getElementById('zoom-in').addEventListener('click', function () { zoom(0.5, (view.from + view.to) / 2); });
    document.getElementById('zoom-out').addEventListener('click', function () { zoom(2, (view.from + view.to) / 2); });
    document.getElementById('zoom-reset').addEventListener('click', function () { view = { from: 0, to: end }; draw(); });
    window.addEventListener('resize', draw);

    var legend = document.getElementById('legend');
    LEGEND.forEach(function (entry) {
      var item = document.createElement('span');
      var swatch = el('svg', { width: 10, height: 10 }, item);
      el('rect', { 'class': entry[0], width: 10, height: 10, rx: 2 }, swatch);
      item.appendChild(document.createTextNode(' ' + entry[1]));
      legend.appendChild(item);
    });
    var notes = document.getElementById('notes');
    data.notes.forEach(function (note) {
      var li = document.createElement('li');
      li.textContent = note;
      notes.appendChild(li);
    });
    draw();
    if (window.location.hash === '#selftest') selfTest(show, tips, data);
  }

  // For the browser test (hal-sim/tests/html.rs), which cannot move a mouse: hover the
  // first mark that has a record, zoom in and back out, and say on the body how each went.
  function selfTest(show, tips, data) {
    var body = document.body;
    var marks = document.querySelectorAll('#chart [data-i]');
    var hovered = 'no mark with a record';
    for (var i = 0; i < marks.length; i++) {
      var item = tips[Number(marks[i].getAttribute('data-i'))];
      if (item.r === null || item.r === undefined) continue;
      show({ target: marks[i], clientX: 10, clientY: 10 });
      var text = document.getElementById('tooltip').textContent;
      var record = JSON.parse(data.records[item.r]);
      hovered = text.indexOf('"kind": "' + record.kind + '"') >= 0 ? 'ok' : 'tooltip without its record: ' + text;
      break;
    }
    body.setAttribute('data-selftest-hover', hovered);
    var before = document.getElementById('window').textContent;
    document.getElementById('zoom-in').click();
    var after = document.getElementById('window').textContent;
    document.getElementById('zoom-reset').click();
    var reset = document.getElementById('window').textContent;
    body.setAttribute('data-selftest-zoom', before !== after && reset === before ? 'ok'
      : 'zoomed in to ' + after + ', back to ' + reset + ' from ' + before);
  }

  try {
    start();
    document.body.setAttribute('data-ready', 'true');
  } catch (error) {
    fail(error);
  }
}());
