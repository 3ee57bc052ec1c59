// Starts Swagger UI on /docs from a file, so the page needs no inline script.
"use strict";
window.addEventListener("load", function () {
  window.ui = window.SwaggerUIBundle({
    url: document.body.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
  });
});
