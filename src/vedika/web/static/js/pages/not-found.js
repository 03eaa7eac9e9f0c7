// The 404 page still has the sidebar, so the visitor can go somewhere useful.

import { initLayout } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { refreshCoins } from "../coins.js";
import { getSession } from "../session.js";

initLayout();
const sidebar = new Sidebar(document.getElementById("sidebar"));
getSession()
  .then(() => Promise.all([sidebar.load(), refreshCoins()]))
  .catch(() => {})
  .finally(() => document.body.classList.add("ready"));
