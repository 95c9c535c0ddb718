-- Red Hat's yaml-language-server (yamlls) in Neovim 0.11+, with nvim-lspconfig installed.
-- Put this in init.lua, or the table passed to vim.lsp.config in lsp/yamlls.lua.
-- (Neovim 0.10: require("lspconfig").yamlls.setup({ settings = { yaml = { ... } } }).)
vim.lsp.config("yamlls", {
  settings = {
    yaml = {
      -- Every document of every file under schedules/, not only the first one of a file.
      schemas = {
        ["https://schedule-reconciler.github.io/schema/v1/schedule.schema.json"] = {
          "schedules/**/*.yaml",
          "schedules/**/*.yml",
        },
      },
      -- YAML 1.2, as the reconciler reads it: `yes` and `on` are text, not booleans.
      yamlVersion = "1.2",
    },
  },
})
vim.lsp.enable("yamlls")
