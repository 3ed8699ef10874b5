"""The built book in headless Chromium: synced tabs, remembered choice, ?framework=, images,
console. Serves _build/html on 127.0.0.1 and drives Debian's /usr/bin/chromium via Playwright.

Requests to other hosts are blocked (the book must work offline: it serves MathJax itself); the
math test fails if the chapter page makes any.
"""
import functools
import http.server
import threading

import pytest
from playwright.sync_api import sync_playwright

from book.tools.chapters import PAGE
from book_helpers import HTML, ROOT, chapter_names, require_built_book
from d2lmini.frameworks import IDS

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
CHAPTER = chapter_names()[0]

# For every framework tab set: the framework of the checked tab, and whether exactly that
# tab's content is displayed.
TAB_STATE_JS = '''() => Array.from(document.querySelectorAll('.sd-tab-set.framework-tabs')).map((set) => {
  const labels = Array.from(set.querySelectorAll(':scope > label.sd-tab-label'));
  const checked = labels.filter((l) => document.getElementById(l.htmlFor).checked);
  const shown = labels.filter((l) => document.getElementById(l.getAttribute('aria-controls')).checkVisibility());
  return {checked: checked.map((l) => l.dataset.syncId), shown: shown.map((l) => l.dataset.syncId)};
})'''


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Handler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_port}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """A browser context (one localStorage) that records console errors and outside requests."""

    def __init__(self, browser, server, viewport=None):
        self.server, self.errors, self.outside = server, [], []
        self.context = browser.new_context(viewport=viewport or {'width': 1280, 'height': 900})
        self.context.route('**/*', self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.server):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort('blockedbyclient')

    def open(self, path):
        page = self.context.new_page()
        page.on('console', lambda msg: msg.type == 'error' and self.errors.append(f'{page.url}: {msg.text}'))
        page.on('pageerror', lambda exc: self.errors.append(f'{page.url}: {exc}'))
        page.goto(f'{self.server}/{path}', wait_until='load')
        return page


def chapter_url():
    return f'book/{CHAPTER}/{PAGE}.html'


def tab_state(page):
    state = page.evaluate(TAB_STATE_JS)
    assert state, 'no framework tab sets on the page'
    return state


def assert_everywhere(page, fw):
    for n, tab_set in enumerate(tab_state(page)):
        assert tab_set == {'checked': [fw], 'shown': [fw]}, f'tab set {n}: {tab_set}, expected {fw}'


def test_tabs_switch_together_persist_and_follow_the_address(browser, server):
    require_built_book()
    session = Session(browser, server)
    page = session.open(chapter_url())
    sets = page.locator('.sd-tab-set.framework-tabs')
    count = sets.count()
    assert count >= 2, 'need at least two tab sets to test syncing'
    assert_everywhere(page, IDS[0])                         # the default: the first in book order

    # one click on any tab set switches all of them, whichever set is clicked
    for n, fw in enumerate(['tensorflow', 'jax', 'mxnet', 'pytorch', 'jax']):
        which = [count - 1, 0, count // 2, 1, count - 2][n]
        sets.nth(which).locator(f':scope > label[data-sync-id="{fw}"]').click()
        assert_everywhere(page, fw)

    # the choice survives a reload and a new page of the same browser
    page.reload(wait_until='load')
    assert_everywhere(page, 'jax')
    sets = page.locator('.sd-tab-set.framework-tabs')
    sets.nth(0).locator(':scope > label[data-sync-id="mxnet"]').click()
    assert_everywhere(page, 'mxnet')
    again = session.open(chapter_url())
    assert_everywhere(again, 'mxnet')

    # ?framework= wins over the stored choice (here: mxnet), in any case or alias
    linked = session.open(chapter_url() + '?framework=jax')
    assert_everywhere(linked, 'jax')
    assert_everywhere(session.open(chapter_url() + '?framework=TF'), 'tensorflow')
    # ... and then is the stored choice; a value that names no framework changes nothing
    assert_everywhere(session.open(chapter_url() + '?framework=nonsense'), 'tensorflow')

    # a click on a page opened with ?framework= updates the address, so a reload keeps the click
    linked.locator('.sd-tab-set.framework-tabs').nth(1).locator(':scope > label[data-sync-id="pytorch"]').click()
    assert_everywhere(linked, 'pytorch')
    assert linked.url.endswith('?framework=pytorch')
    linked.reload(wait_until='load')
    assert_everywhere(linked, 'pytorch')

    # a fresh browser with nothing stored follows the address too
    fresh = Session(browser, server)
    assert_everywhere(fresh.open(chapter_url() + '?framework=jax'), 'jax')

    assert session.errors + fresh.errors == []
    print('requests to other hosts, blocked:', sorted(set(session.outside + fresh.outside)))


def test_clicked_tab_set_stays_in_place_when_tab_sets_above_change(browser, server):
    require_built_book()
    session = Session(browser, server)
    page = session.open(chapter_url())
    # Chromium's own scroll anchoring would hide the page's work; Safari has none.
    page.add_style_tag(content='html, body { overflow-anchor: none !important; }')
    sets = page.locator('.sd-tab-set.framework-tabs')
    last = sets.nth(sets.count() - 1)
    heights_before = page.evaluate('''() => Array.from(document.querySelectorAll('.sd-tab-set.framework-tabs'))
                                      .map((s) => s.getBoundingClientRect().height)''')
    # Where the set is when the reader presses the tab: Playwright may scroll again before it
    # clicks (to bring the label out from under the sticky header), so measure at pointerdown.
    page.evaluate('''() => document.addEventListener('pointerdown', (event) => {
      const set = event.target.closest('.sd-tab-set');
      window.topAtPress = set ? set.getBoundingClientRect().top : null;
    }, true)''')
    for fw in ['mxnet', 'tensorflow', 'jax']:
        last.scroll_into_view_if_needed()
        page.evaluate('() => { window.topAtPress = null; }')
        last.locator(f':scope > label[data-sync-id="{fw}"]').click()
        assert_everywhere(page, fw)
        top = page.evaluate('() => window.topAtPress')
        assert top is not None, 'the press did not land on the tab set'
        assert abs(last.evaluate('(el) => el.getBoundingClientRect().top') - top) <= 1
    heights_after = page.evaluate('''() => Array.from(document.querySelectorAll('.sd-tab-set.framework-tabs'))
                                     .map((s) => s.getBoundingClientRect().height)''')
    assert heights_before[:-1] != heights_after[:-1], 'no tab set above changed height: nothing tested'
    assert session.errors == []


def test_outputs_wrap_within_the_column(browser, server):
    """A long output line (an epoch line with its throughput) wraps instead of hiding its end
    behind a sideways scroll."""
    require_built_book()
    session = Session(browser, server)
    page = session.open(chapter_url())
    for fw in IDS:
        page.locator(f'.sd-tab-set.framework-tabs > label[data-sync-id="{fw}"]').first.click()
        widths = page.evaluate('''() => Array.from(document.querySelectorAll('article .cell_output pre'))
            .filter((pre) => pre.checkVisibility())
            .map((pre) => [pre.scrollWidth, pre.clientWidth, pre.textContent.split('\\n')[0].slice(0, 60)])''')
        assert widths, f'{fw}: no outputs shown'
        assert [w for w in widths if w[0] > w[1] + 1] == [], f'{fw}: outputs wider than the column'
    assert session.errors == []


# Every visible code block that scrolls sideways, and every epoch line of the visible outputs
# that takes more than one line box (a Range over its characters has one rectangle per box).
WIDTHS_JS = r'''() => {
  const visible = (selector) => Array.from(document.querySelectorAll(selector)).filter((e) => e.checkVisibility());
  const scrolling = visible('article .cell_input pre').filter((pre) => pre.scrollWidth > pre.clientWidth)
    .map((pre) => `${pre.scrollWidth} > ${pre.clientWidth}: ${pre.textContent.slice(0, 50)}`);
  const epochs = [], wrapped = [];
  for (const pre of visible('article .cell_output pre')) {
    const nodes = [], walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let text = '';
    while (walker.nextNode()) { nodes.push([walker.currentNode, text.length]); text += walker.currentNode.data; }
    const at = (offset) => {
      let i = nodes.length - 1;
      while (i > 0 && nodes[i][1] > offset) i--;
      return [nodes[i][0], offset - nodes[i][1]];
    };
    let start = 0;
    for (const line of text.split('\n')) {
      if (/^epoch \d+\/\d+/.test(line)) {
        const range = document.createRange();
        range.setStart(...at(start));
        range.setEnd(...at(start + line.trimEnd().length));
        const boxes = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        epochs.push(line);
        if (boxes.size > 1) wrapped.push(line);
      }
      start += line.length + 1;
    }
  }
  return {codes: visible('article .cell_input pre').length, scrolling, epochs: epochs.length, wrapped};
}'''


def test_code_and_epoch_lines_fit_a_1280_pixel_window(browser, server):
    """At a common laptop width, no code cell scrolls sideways and every epoch line of the
    training outputs stays on one line, in every framework's tab."""
    require_built_book()
    session = Session(browser, server, viewport={'width': 1280, 'height': 800})
    page = session.open(chapter_url())
    for fw in IDS:
        page.locator(f'.sd-tab-set.framework-tabs > label[data-sync-id="{fw}"]').first.click()
        state = page.evaluate(WIDTHS_JS)
        assert state['codes'] and state['epochs'], f'{fw}: no code cells or no epoch lines shown: {state}'
        assert state['scrolling'] == [], f'{fw}: code cells that scroll sideways at 1280 px'
        assert state['wrapped'] == [], f'{fw}: epoch lines on two lines at 1280 px'
    assert session.errors == []


def test_images_load_console_is_clean_and_screenshot(browser, server):
    require_built_book()
    session = Session(browser, server)
    for path in ('index.html', 'book/intro.html', chapter_url()):
        page = session.open(path)
        page.wait_for_load_state('networkidle')
        images = page.evaluate('''() => Array.from(document.images).map((img) =>
            ({src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth}))''')
        broken = [img for img in images if not (img['complete'] and img['width'] > 0)]
        assert broken == [], f'{path}: images that did not load: {broken}'
        if path == chapter_url():
            assert len(images) >= 2
            screenshot = ROOT / '_build' / f'screenshot-{CHAPTER}.png'
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
    assert session.errors == []


# Every formula on a page: Sphinx writes inline math as <span class="math">\(...\)</span> and
# display math as <div class="math">\[...\]</div>; MathJax replaces the TeX with <mjx-container>.
MATH_STATE_JS = r'''async () => {
  await MathJax.startup.promise;
  const formulas = Array.from(document.querySelectorAll('.math'));
  const raw = formulas.filter((el) => !el.querySelector('mjx-container') || /\\[(\[]/.test(el.innerText));
  const text = document.body.innerText;
  return {formulas: formulas.length, untypeset: raw.map((el) => el.textContent.slice(0, 60)),
          delimiters: (text.match(/\\[()\[\]]/g) || []).length,
          script: Array.from(document.scripts).map((s) => s.src).filter((s) => /mathjax/i.test(s))};
}'''


def test_every_formula_is_typeset_offline(browser, server):
    require_built_book()
    session = Session(browser, server)
    page = session.open(chapter_url())
    page.wait_for_load_state('networkidle')         # MathJax, its fonts and on-demand extensions
    loaded = page.evaluate('() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)')
    assert loaded, f'MathJax did not load; outside requests (blocked): {session.outside}'
    state = page.evaluate(MATH_STATE_JS)
    assert state['script'] and all(s.startswith(server) for s in state['script']), state['script']
    assert state['formulas'] >= 20, f'only {state["formulas"]} formulas on the chapter page'
    assert state['untypeset'] == [], f'formulas MathJax did not typeset: {state["untypeset"]}'
    assert state['delimiters'] == 0, 'raw \\( or \\[ left in the page text'
    page.wait_for_load_state('networkidle')
    assert session.outside == [], f'the page asked for outside addresses: {session.outside}'
    assert session.errors == []


# For each worked answer (book/_ext/answers.py): whether it is open, and whether its first
# framework tab set and its summary are visible.
ANSWER_STATE_JS = '''() => Array.from(document.querySelectorAll('details.answer')).map((d) => ({
  open: d.open, summary: d.querySelector('summary').checkVisibility(),
  tabs: d.querySelector('.sd-tab-set.framework-tabs').checkVisibility()}))'''


def test_worked_answers_are_folded_until_opened_and_the_chapter_links_them(browser, server):
    require_built_book()
    exercises = 'googlenet_exercises'
    assert exercises in chapter_names(), '_toc.yml lists the worked exercises after the chapter'
    session = Session(browser, server)
    page = session.open(chapter_url())
    page.click('a[href$="googlenet_exercises/index.html#exercise-4"]')
    page.wait_for_load_state('load')
    assert page.url.endswith(f'book/{exercises}/{PAGE}.html#exercise-4')
    assert page.evaluate('() => document.getElementById("exercise-4").getBoundingClientRect().top') < 200
    closed = page.evaluate(ANSWER_STATE_JS)
    assert len(closed) == 5 and all(a == {'open': False, 'summary': True, 'tabs': False} for a in closed)
    page.locator('details.answer > summary').nth(1).click()
    opened = page.evaluate(ANSWER_STATE_JS)
    assert opened[1] == {'open': True, 'summary': True, 'tabs': True}
    assert [a['open'] for a in opened] == [False, True, False, False, False]
    images = page.evaluate('() => Array.from(document.images).map((img) => img.naturalWidth)')
    assert images and all(width > 0 for width in images)       # the intensity figure too
    assert session.errors == [] and session.outside == []
