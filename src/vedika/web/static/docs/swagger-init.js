// Starts Swagger UI on /docs. A file of its own (not an inline <script>, as FastAPI's
// page has) so the docs page runs under `script-src 'self'` like every other page.
// The schema address comes from the page (data-openapi-url on this script's tag).

const openapiUrl = document.currentScript?.dataset.openapiUrl || "/openapi.json";

window.ui = window.SwaggerUIBundle({
  url: openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
