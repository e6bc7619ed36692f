// The Merkle inclusion proof on an event's page (section#proof, /log/{position}), checked
// here with WebCrypto, as README's "Audit" section documents it (RFC 6962 / RFC 9162): the
// leaf hash is SHA-256(0x00 ‖ the event's canonical bytes), each node SHA-256(0x01 ‖ left ‖
// right), and the audit path, walked by RFC 9162 2.1.3.2 from the leaf index and tree size,
// must end at the root the checkpoint signs. The result is in #proof-status: "verified" or
// "failed" (with why). window.diplogCheckProofs() checks again (after the page changed).
(function () {
  'use strict';

  function bytes(hex) {
    if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) {
      throw new Error('not hex: ' + hex);
    }
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i += 1) {
      out[i] = parseInt(hex.substr(i * 2, 2), 16);
    }
    return out;
  }

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) {
        return (b < 16 ? '0' : '') + b.toString(16);
      })
      .join('');
  }

  function sha256(prefix, parts) {
    var length = 1;
    parts.forEach(function (part) {
      length += part.length;
    });
    var data = new Uint8Array(length);
    data[0] = prefix;
    var at = 1;
    parts.forEach(function (part) {
      data.set(part, at);
      at += part.length;
    });
    return window.crypto.subtle.digest('SHA-256', data).then(function (digest) {
      return new Uint8Array(digest);
    });
  }

  // RFC 9162 2.1.3.2: the root that the leaf and the path give, or an error.
  function rootOf(leaf, index, size, path) {
    if (!(index < size)) {
      return Promise.reject(new Error('leaf index ' + index + ' is not below tree size ' + size));
    }
    var fn = index;
    var sn = size - 1;
    var result = Promise.resolve(leaf);
    path.forEach(function (sibling) {
      if (sn === 0) {
        result = Promise.reject(new Error('the audit path is too long'));
        return;
      }
      var left = fn % 2 === 1 || fn === sn;
      result = result.then(function (r) {
        return left ? sha256(1, [sibling, r]) : sha256(1, [r, sibling]);
      });
      if (left && fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    });
    if (sn !== 0) {
      return Promise.reject(new Error('the audit path is too short'));
    }
    return result;
  }

  function check(section) {
    var status = section.querySelector('.proof-status');
    function show(text, ok) {
      if (status) {
        status.textContent = text;
        status.classList.toggle('verified', ok);
        status.classList.toggle('failed', !ok);
      }
      section.dataset.checked = ok ? 'verified' : 'failed';
    }
    if (!window.crypto || !window.crypto.subtle) {
      show('failed: this browser offers no WebCrypto here (it needs https or localhost)', false);
      return Promise.resolve(false);
    }
    var d = section.dataset;
    return Promise.resolve()
      .then(function () {
        var path = (d.path || '').split(' ').filter(Boolean).map(bytes);
        var leaf = bytes(d.leaf);
        var root = bytes(d.root);
        return sha256(0, [bytes(d.entry)]).then(function (computed) {
          if (hex(computed) !== hex(leaf)) {
            throw new Error('the event\'s bytes do not hash to the leaf hash');
          }
          return rootOf(leaf, Number(d.index), Number(d.size), path);
        }).then(function (computedRoot) {
          if (hex(computedRoot) !== hex(root)) {
            throw new Error('the path leads to ' + hex(computedRoot) + ', not to the root');
          }
        });
      })
      .then(function () {
        show('verified', true);
        return true;
      })
      .catch(function (error) {
        show('failed: ' + error.message, false);
        return false;
      });
  }

  window.diplogCheckProofs = function () {
    var sections = document.querySelectorAll('section.proof');
    return Promise.all(Array.prototype.map.call(sections, check));
  };
  window.diplogCheckProofs();
})();

// diplog dashboard: keeps an open page up to date without reloading it. The server says on
// /live (server-sent events) where the log's head is; when it passes the position the page
// shows (main[data-position]), this fetches the same page with min_position (so the
// projections have caught up) and fragment=1 (only its <main>), and swaps that in.
// Pages answered "as of" a past state (data-live="false") do not follow the log.
(function () {
  'use strict';
  // Set once per page load: a test can tell that updates came without a reload.
  window.diplogLoadedAt = Date.now();
  window.diplogUpdates = 0;

  var status = document.getElementById('live-status');
  var first = document.querySelector('main');
  if (!first || first.dataset.live !== 'true' || !window.EventSource || !window.fetch) {
    return;
  }
  var wanted = 0;
  var busy = false;

  function shown() {
    var main = document.querySelector('main');
    return main ? Number(main.dataset.position || 0) : 0;
  }

  function setStatus(text, connected) {
    if (status) {
      status.textContent = text;
      status.classList.toggle('connected', connected);
      status.classList.toggle('catching-up', text === 'catching up');
    }
  }

  // A page whose projections have not reached the head waits for them (a big import, a
  // rebuild): when a refresh takes more than a moment, or the server answers that they are
  // not there yet (503), the status says so until a refresh comes back.
  function catchingUp() {
    if (source) {
      setStatus('catching up', true);
    }
  }

  function refresh() {
    if (busy || wanted <= shown()) {
      return;
    }
    busy = true;
    var target = wanted;
    var slow = setTimeout(catchingUp, 1000);
    var url = new URL(window.location.href);
    url.searchParams.set('min_position', String(target));
    url.searchParams.set('fragment', '1');
    fetch(url.toString(), { headers: { Accept: 'text/html' }, cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.text();
      })
      .then(function (html) {
        clearTimeout(slow);
        if (source) {
          setStatus('live', true);
        }
        var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        var main = document.querySelector('main');
        if (fresh && main && Number(fresh.dataset.position || 0) >= shown()) {
          main.replaceWith(fresh);
          window.diplogUpdates += 1;
          window.diplogCheckProofs();
        }
        busy = false;
        if (shown() >= target) {
          refresh(); // the head may have moved on meanwhile
        }
      })
      .catch(function (error) {
        clearTimeout(slow);
        if (error.message === '503') {
          catchingUp();
        }
        // Try again in a moment (the projections may still be catching up).
        setTimeout(function () {
          busy = false;
          refresh();
        }, 1000);
      });
  }

  var source = null;
  var retry = null;
  var retryDelay = 2000;

  function connect() {
    retry = null;
    var stream = new EventSource('/live');
    source = stream;
    stream.onopen = function () {
      retryDelay = 2000;
      setStatus('live', true);
    };
    stream.onerror = function () {
      setStatus('reconnecting…', false);
      // A lost connection the browser retries by itself; an answer that is not the stream
      // (an error status, say while the database is unavailable) closes it for good: retry,
      // less often while it lasts.
      if (stream.readyState === EventSource.CLOSED && source === stream) {
        source = null;
        retry = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    };
    stream.onmessage = function (message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (typeof data.position === 'number' && data.position > wanted) {
        wanted = data.position;
        refresh();
      }
    };
  }

  // A page left for another must not keep its stream open (browsers allow a few connections
  // per server, and keep recent pages around for the back button); one shown again from
  // that cache reconnects, and catches up from the first message.
  window.addEventListener('pagehide', function () {
    if (source) {
      source.close();
      source = null;
    }
    clearTimeout(retry);
    retry = null;
    setStatus('paused', false);
  });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted && !source && !retry) {
      connect();
    }
  });
  connect();
})();
