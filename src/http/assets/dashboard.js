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
    }
  }

  function refresh() {
    if (busy || wanted <= shown()) {
      return;
    }
    busy = true;
    var target = wanted;
    var url = new URL(window.location.href);
    url.searchParams.set('min_position', String(target));
    url.searchParams.set('fragment', '1');
    fetch(url.toString(), { headers: { Accept: 'text/html' }, cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        var main = document.querySelector('main');
        if (fresh && main && Number(fresh.dataset.position || 0) >= shown()) {
          main.replaceWith(fresh);
          window.diplogUpdates += 1;
        }
        busy = false;
        if (shown() >= target) {
          refresh(); // the head may have moved on meanwhile
        }
      })
      .catch(function () {
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
