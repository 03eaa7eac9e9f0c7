// Starts Swagger UI on /docs. A file of its own (not an inline <script>, as FastAPI's
// page has) so the docs page runs under `script-src 'self'` like every other page.
// The schema address comes from the page (data-openapi-url on this script's tag).

const openapiUrl = document.currentScript?.dataset.openapiUrl || "/openapi.json";

// Accessibility (axe-core, tests/browser/test_accessibility.py): a hidden "Operations"
// heading sits between the page's h1 and the tags' h3s (heading levels go up one at a
// time), and the title block becomes a banner landmark once rendered (all content
// inside landmarks; Swagger UI puts its operations in a <main> of its own).
const Accessible = (system) => {
  const h = system.React.createElement;
  return {
    wrapComponents: {
      operations: (Original) => (props) =>
        h(system.React.Fragment, null, h("h2", { className: "docs-heading" }, "Operations"), h(Original, props)),
    },
  };
};

window.ui = window.SwaggerUIBundle({
  url: openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  // Deep links make each operation's path a link inside its summary button (nested
  // interactive controls, which axe-core and screen readers flag): off.
  deepLinking: false,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  plugins: [Accessible],
  onComplete: () => document.querySelector(".information-container")?.setAttribute("role", "banner"),
});
