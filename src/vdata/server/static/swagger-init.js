// Starts Swagger UI on /docs from a file: the pages' Content-Security-Policy runs no inline script.
// The settings come from the page's JSON block (#swagger-config).
window.addEventListener("load", function () {
  var config = JSON.parse(document.getElementById("swagger-config").textContent);
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  window.ui = SwaggerUIBundle(config);
});
