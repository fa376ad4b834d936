// Starts Swagger UI on /docs (a file of its own: the page's CSP allows no inline script).
// Everything it loads comes from this server: the spec, and no validator badge
// (Swagger UI would fetch one from swagger.io).
/* global SwaggerUIBundle */
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: false,
  });
});
