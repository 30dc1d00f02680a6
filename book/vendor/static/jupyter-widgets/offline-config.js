// Loaded after require.js and before embed-amd.js (see _config.yml, nb_ipywidgets_js).
//
// embed-amd.js defines its modules by name (@jupyter-widgets/html-manager, .../controls, ...).
// Each module locates its assets - the Font Awesome fonts of widget icons - from the URL that
// RequireJS gives its name, which by default is relative to the page: a different, missing folder
// for every page depth. Map those names to this script's folder, where the fonts are vendored,
// so icons load from the book's own _static folder on every page and without a network.
(function () {
  var here = document.currentScript.src.replace(/\/[^/]*$/, "");
  window.__jupyter_widgets_assets_path__ = here + "/";
  window.requirejs.config({
    paths: {
      "@jupyter-widgets/html-manager/dist": here,
      "@jupyter-widgets": here,
    },
  });
})();
