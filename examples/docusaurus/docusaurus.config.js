// @ts-check
// A Docusaurus 3 site that signs its readers in with Lanyard. See README.md.
//
// LANYARD_URL and BACKEND_URL are read at BUILD time and baked into the static
// site (customFields): rebuild after changing them.
const lanyardUrl = (process.env.LANYARD_URL || 'http://localhost:8080').replace(/\/+$/, '');
const backendUrl = (process.env.BACKEND_URL || 'http://localhost:8000').replace(/\/+$/, '');

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Robotics for Python developers',
  tagline: 'A textbook that knows its reader, signed in with Lanyard',
  url: process.env.SITE_URL || 'http://localhost:3000',
  baseUrl: '/',
  onBrokenLinks: 'throw',
  trailingSlash: false,
  customFields: { lanyardUrl, backendUrl },
  i18n: { defaultLocale: 'en', locales: ['en'] },
  // Only what the example needs: React pages and the classic theme (navbar, footer).
  //
  // One React: @lanyard/client is a symlink (file:../../clients/js) and
  // clients/js/node_modules has its own dev copy of react. Docusaurus 3 aliases
  // react, react-dom and @mdx-js/react to this site's copies for both bundles
  // (getReactAliases in @docusaurus/core), so imports from the linked package
  // resolve here too. Measured: with that alias turned off
  // (DOCUSAURUS_NO_REACT_ALIASES=1) static rendering fails with "Cannot read
  // properties of null (reading 'useState')". Do not set that variable.
  themes: [['@docusaurus/theme-classic', { customCss: require.resolve('./src/css/custom.css') }]],
  plugins: ['@docusaurus/plugin-content-pages'],
  themeConfig: {
    navbar: {
      title: 'Robotics for Python developers',
      items: [
        { to: '/chapter', label: 'Chapter 1', position: 'left' },
        // Session state: "Sign in / Sign up" or the reader's email and "Sign out".
        // Registered in src/theme/NavbarItem/ComponentTypes.js.
        { type: 'custom-lanyardSession', position: 'right' },
      ],
    },
    footer: { style: 'dark', copyright: 'Lanyard example site' },
    colorMode: { respectPrefersColorScheme: true },
  },
};

module.exports = config;
